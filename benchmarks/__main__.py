"""``python -m benchmarks [--quick] [--out DIR] [--work DIR] [--keep]``: bfdask's benchmark suite.

``python -m benchmarks fuzz [...]`` runs the damaged-file campaign instead (``benchmarks/fuzz.py``,
``--help`` for its options) and writes only its own section of ``RESULTS.md``;
``python -m benchmarks bridges`` likewise measures javabridge against JPype (``bridges.py``),
``python -m benchmarks vendors`` native CZI and ND2 against their own readers (``vendors.py``),
``python -m benchmarks userjob`` the user's job against their loop and the floor (``userjob.py``),
``python -m benchmarks outofcore`` the stitched job on a LIF larger than RAM, cache cold
(``outofcore.py``).

Writes ``RESULTS.md``, ``results.json`` and PNG plots to ``--out`` (default: this folder).
``--quick`` shrinks every file to a few MB and runs each measurement once (a CI smoke test of
seconds, not results). Test files go under ``--work`` (default ``/tmp/bfdask-bench``) and are
deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny files, one run each (seconds)")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where RESULTS.md and the PNGs go (default: benchmarks/; required "
        "with --quick so the committed results are not overwritten)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder for generated files (default /tmp/bfdask-bench[-quick])",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--only", default="", help="comma-separated sections to run (debugging)")
    ap.add_argument(
        "--state", type=Path, default=None, help="also pickle the measured sections to this file"
    )
    ap.add_argument(
        "--rerender",
        type=Path,
        default=None,
        help="rewrite RESULTS.md and the plots from a --state file (no measuring)",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fuzz"]:
        from . import fuzz

        return fuzz.main(argv[1:])
    if argv[:1] == ["bridges"]:
        from . import bridges

        return bridges.main(argv[1:])
    if argv[:1] == ["vendors"]:
        from . import vendors

        return vendors.main(argv[1:])
    if argv[:1] == ["userjob"]:
        from . import userjob

        return userjob.main(argv[1:])
    if argv[:1] == ["outofcore"]:
        from . import outofcore

        return outofcore.main(argv[1:])
    args = _parse(argv)
    if args.out is None:
        if args.quick:
            print(
                "--quick needs --out DIR (it must not overwrite benchmarks/RESULTS.md)",
                file=sys.stderr,
            )
            return 2
        args.out = HERE
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.rerender:
        import pickle

        state = pickle.loads(args.rerender.read_bytes())
        _write(out, state["sections"], state["env"], state["extra"])
        return 0
    work: Path = (
        args.work or Path("/tmp/bfdask-bench" + ("-quick" if args.quick else ""))
    ).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # a Memoizer folder of our own (inherited by workers), not the user's cache
    os.environ["BFDASK_MEMO_DIR"] = str(work / "memo-main")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    )
    # workers inherit it: keep Bio-Formats quiet
    os.environ.setdefault("BFDASK_LOG_LEVEL", "ERROR")
    # sections 1-4 measure the Bio-Formats path (as they were written to); section 5 asks for
    # each pixel source explicitly
    os.environ.setdefault("BFDASK_PIXELS", "bioformats")

    import logging

    import distributed  # noqa: F401 - configures its loggers, which we then quieten

    import bfdask

    from . import _tasks, dimorder, native, overhead, profiling, scale, throughput
    from ._util import Section, Settings, load_average, machine

    for name in list(logging.root.manager.loggerDict):
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.ERROR)
    started = time.perf_counter()
    s = Settings.make(args.quick, out, work)
    env: dict[str, Any] = {
        "quick": args.quick,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": load_average(),
        "bfdask": bfdask.__version__,
    }
    env["jvm"] = bfdask.jvm_info()
    only = set(filter(None, args.only.split(",")))

    def want(name: str) -> bool:
        return not only or name in only

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {msg}", flush=True)

    sections: dict[str, Section] = {}
    failures: list[str] = []

    def attempt(name: str, fn: Any) -> None:
        if not want(name):
            return
        log(f"section {name} ...")
        try:
            sections[name] = fn()
        except Exception:
            failures.append(f"{name}: {traceback.format_exc()}")
            log(f"section {name} FAILED:\n{traceback.format_exc()}")
        log(f"section {name} done")

    try:
        attempt("dimorder", lambda: dimorder.run(s))
        clusters: dict[int, Any] = {}
        if want("overhead") or want("throughput"):
            log("starting LocalClusters (1 and 2 workers)")
            for n in (1, 2):
                clusters[n] = _tasks.start_cluster(n)
        try:
            attempt("overhead", lambda: overhead.run(s, clusters))
            attempt("throughput", lambda: throughput.run(s, clusters))
        finally:
            for cluster, client in clusters.values():
                client.close()
                cluster.close()
        attempt("scale", lambda: scale.run(s))
        attempt("native", lambda: native.run(s))
        extra = []
        if s.profiler and "throughput" in sections:
            log("py-spy profile ...")
            big = sections["throughput"].data["big_path"]
            for chunks in ("default", "one-plane"):
                try:
                    extra.append(profiling.profile(big, work, 8.0, chunks))
                except Exception as exc:  # the profile is extra, never fatal
                    log(f"py-spy failed: {exc}")
        env["elapsed_s"] = time.perf_counter() - started
        env["load_end"] = load_average()
        if failures:
            (out / "FAILURES.txt").write_text("\n\n".join(failures))
            log(f"{len(failures)} section(s) failed; see {out / 'FAILURES.txt'}")
            return 1
        if args.state:
            import pickle

            args.state.write_bytes(
                pickle.dumps({"sections": sections, "env": env, "extra": extra})
            )
        _write(out, sections, env, extra)
        log(f"wrote {out / 'RESULTS.md'}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _write(out: Path, sections: dict[str, Any], env: dict[str, Any], extra: list[Any]) -> None:
    """RESULTS.md, results.json and the PNGs from measured sections."""
    from . import bridges, dimorder, fuzz, outofcore, report, userjob, vendors

    sec = sections.get("dimorder")
    if sec is not None:  # the worded answer is derived from the stored numbers
        results = sec.data["results_mbps"]
        desc = {row[0]: row[1] for row in sec.tables[0].rows}
        sec.text = dimorder.answer(results, list(results["A"]), desc, sec.data["mean_tiff"])
    target_table = report.targets(sections)
    figures = report.plots(sections, out)
    analysis = report.analysis(sections, extra)
    text = report.render(sections, env, target_table, figures, extra, analysis)
    old = out / "RESULTS.md"
    # the fuzz campaign's section (python -m benchmarks fuzz) is kept, not measured here
    text = fuzz.keep_section(old.read_text() if old.exists() else "", text)
    # so is the bridges section (python -m benchmarks bridges)
    text = bridges.keep_section(old.read_text() if old.exists() else "", text)
    # and the native CZI/ND2 section (python -m benchmarks vendors)
    text = vendors.keep_section(old.read_text() if old.exists() else "", text)
    # and the user's job (python -m benchmarks userjob)
    text = userjob.keep_section(old.read_text() if old.exists() else "", text)
    # and the out-of-core run (python -m benchmarks outofcore)
    text = outofcore.keep_section(old.read_text() if old.exists() else "", text)
    old.write_text(text)
    (out / "results.json").write_text(
        json.dumps(
            {
                "env": env,
                "targets": target_table.rows,
                **{name: sec.data for name, sec in sections.items()},
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
