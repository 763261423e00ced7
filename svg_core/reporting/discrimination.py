"""Where within-video discrimination fails: pairs split by what the query's event is and what its caption must name.

    python -m svg_core.reporting.discrimination results/v3/eval/text_s0_normal.jsonl --scenes data/synth_v3/scenes.json

Reads a predictions file of ``svg_core.evaluate`` and the ``scenes.json`` of a synthetic build
(each query's event and the caption's ``needs``), and prints the discrimination of the pairs
grouped by the own query's action, by its needs, and by whether the two moments belong to one
object. Synthetic data only: real ActivityNet folders have no scenes.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from svg_core.engine.listening import discrimination_by
from svg_core.engine.metrics import read_predictions
from svg_core.errors import MissingInputError, UserInputError, run_cli


def query_events(scenes: list[dict]) -> dict[str, dict]:
    """wav name -> {"action", "obj", "needs"} of the query's event (from scenes.json records)."""
    out = {}
    for scene in scenes:
        for q in scene.get("queries", []):
            ev = scene["events"][q["event"]]
            out[q["wav_name"]] = {"action": ev["action"], "obj": ev["obj"], "needs": sorted(q.get("needs", []))}
    return out


def groups(events: dict[str, dict]):
    """The grouping function for :func:`discrimination_by` over query ids (wav names)."""
    def groups_of(ri: dict, rj: dict) -> list[str]:
        ei, ej = events.get(ri["query_id"]), events.get(rj["query_id"])
        if ei is None or ej is None:
            return ["unknown query"]
        return ["all", f"action: {ei['action']}", "needs: " + ("+".join(ei["needs"]) or "none"),
                "same object" if ei["obj"] == ej["obj"] else "other object"]
    return groups_of


def format_groups(table: dict[str, dict]) -> str:
    lines = [f"{'pairs (own query)':44s} {'discrimination %':>16s} {'pairs':>7s}"]
    order = sorted(table, key=lambda g: (g != "all", g.split(":")[0], g))
    lines += [f"{g:44s} {table[g]['discrimination_pct']:16.1f} {table[g]['n_pairs']:7d}" for g in order]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m svg_core.reporting.discrimination", description=__doc__.splitlines()[0])
    p.add_argument("predictions", type=Path, help="predictions jsonl written by svg_core.evaluate --out")
    p.add_argument("--scenes", type=Path, required=True, help="scenes.json of the synthetic build it was scored on")
    args = p.parse_args(argv)
    for path in (args.predictions, args.scenes):
        if not path.is_file():
            raise MissingInputError(f"{path} is not a file")
    try:
        scenes = json.loads(args.scenes.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"{args.scenes} is not JSON ({err}); pass the scenes.json of a synthetic build") from None
    events = query_events(scenes)
    records = read_predictions(args.predictions)
    print(format_groups(discrimination_by(records, groups(events))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
