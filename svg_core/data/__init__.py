"""ActivityNet Speech data: annotations, C3D video features, the grounding Dataset."""
