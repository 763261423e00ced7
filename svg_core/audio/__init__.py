"""Audio: the log-Mel front-end and audio I/O (``frontend``), noise mixing (``noise``), offline TTS (``tts``),
the frozen Whisper base encoder of the speech front-end (``whisper_encoder``, files found by ``whisper_files``).

``from svg_core.audio import load_audio, log_mel, SAMPLE_RATE`` is the public way in; ``noise``
and ``tts`` are imported as submodules (``svg_core.audio.noise``). The front-end names load
lazily, so ``import svg_core.audio.tts`` does not pull in torch.
"""

_FRONTEND = ("N_MELS", "SAMPLE_RATE", "AudioError", "SpeechCheck", "check_speech", "load_audio", "log_mel",
             "n_frames", "to_mono_16k")
__all__ = list(_FRONTEND)


def __getattr__(name: str):
    if name in _FRONTEND:
        from svg_core.audio import frontend

        return getattr(frontend, name)
    raise AttributeError(f"module 'svg_core.audio' has no attribute {name!r}")
