"""Command line: `python -m mnist_scratch {list,run,figure,train,data}` (also `mnist-scratch`)."""

import argparse
import json
import os
import sys
import time

from .errors import PREFIX, Interrupted, UserError, note, out_of_memory
from .paths import DATA_ENV, expand, folder, writable
from .store import CACHE_ENV


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line like every other error (not the usage text too)."""

    def error(self, message):
        self.exit(2, f"{PREFIX}: error: {message} (see `{self.prog} --help`)\n")


def _hidden(text: str) -> tuple[int, ...]:
    """`30` or `64,32`; `none` (or `0`) for logistic regression."""
    if text.strip().lower() in ("none", "0"):
        return ()
    parts = text.split(",")
    if not text.strip() or not all(p.strip().isascii() and p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"hidden sizes must be positive whole numbers separated by commas (or 'none'), got {text!r}")
    return tuple(int(p) for p in parts)


def _common(parser: argparse.ArgumentParser, default=None) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (`run --jobs 2` = `--jobs 2 run`)."""
    parser.add_argument("--data", metavar="PATH", default=default, help="the mnist_png folder (default: $MNIST_DATA, else fastai's)")
    parser.add_argument("--cache", metavar="DIR", default=default, help=f"where results are cached (default: ${CACHE_ENV} or .cache/)")
    parser.add_argument("--jobs", type=int, metavar="N", default=default, help="worker processes (default: one per core)")
    parser.add_argument("--tiny", action="store_true", default=default or False,
                        help="the shrunk experiments CI runs (one epoch, 500 images)")
    return parser


def _parser() -> argparse.ArgumentParser:
    p = _common(_Parser(prog="mnist-scratch", description=__doc__))
    # after the command's name, an option left out keeps the value given before it (or the default)
    after = _common(argparse.ArgumentParser(add_help=False), default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", parents=[after], help="the experiments, and whether each is cached")
    run = sub.add_parser("run", parents=[after], help="run experiments (all by default), reading cached runs")
    run.add_argument("names", nargs="*", metavar="NAME")
    run.add_argument("--force", action="store_true",
                     help="recompute the named experiments' runs, even cached ones (their prerequisites, "
                          "such as lr-sweep, are computed only where missing)")

    fig = sub.add_parser("figure", parents=[after], help="write figures/NAME.png and .svg, computing missing results")
    fig.add_argument("names", nargs="*", metavar="NAME")
    fig.add_argument("--all", action="store_true", help="every figure")
    fig.add_argument("--out", default="figures", metavar="DIR", help="output folder (default: figures)")

    tr = sub.add_parser("train", parents=[after], help="one run with the given settings, printed as JSON")
    tr.add_argument("--hidden", type=str, default="30", help="hidden sizes: 30, 64,32, or none")
    tr.add_argument("--objective", default="cross-entropy")
    tr.add_argument("--lr", type=float, default=0.1)
    tr.add_argument("--epochs", type=int, default=10)
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--no-bias", action="store_true")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--dataset", default="subset", help="subset or full")

    sub.add_parser("report", parents=[after], help="every result and figure, then `quarto render` (HTML and PDF)")
    sub.add_parser("data", parents=[after], help="decode (or load) the MNIST splits and print their sizes and load times")
    return p


def cmd_list(args) -> None:
    from . import results
    from .experiments import EXPERIMENTS, configs

    rows, damaged = [], {}  # experiments come after their prerequisites
    for name, exp in EXPERIMENTS.items():
        cfgs = configs(name, tiny=args.tiny, cached_only=True)
        if cfgs is None:
            state = f"waiting for {', '.join(exp.needs)}"
            bad = sum(damaged.get(dep, 0) for dep in exp.needs)
            if bad:
                state += f" ({bad} damaged {'run' if bad == 1 else 'runs'})"
        else:
            loaded = [results.load(cfg, summary=True) is not None for cfg in cfgs]
            damaged[name] = sum(not ok and results.exists(cfg) for cfg, ok in zip(cfgs, loaded))
            state = f"{sum(loaded)}/{len(cfgs)} runs cached"
            if damaged[name]:
                state += f", {damaged[name]} damaged (`run` recomputes them)"
        rows.append((name, state, exp.doc.split(". ")[0]))
    width = max(24, *(len(state) for _, state, _ in rows))
    for name, state, doc in rows:
        print(f"{name:15} {state:{width}} {doc}")


def cmd_run(args) -> None:
    from .experiments import EXPERIMENTS, build, experiment

    names = args.names or list(EXPERIMENTS)
    for name in names:
        experiment(name)  # unknown names fail before any work starts
    build(names, tiny=args.tiny, force=args.force, jobs=args.jobs, data_path=args.data)


def cmd_figure(args) -> None:
    from .figures import FIGURES, figure_names, save

    names = list(FIGURES) if args.all else list(dict.fromkeys(args.names))  # each drawn once
    if not names:
        raise UserError(f"name a figure or pass --all; figures: {', '.join(figure_names())}")
    for name in names:
        if name not in FIGURES:
            raise UserError(f"unknown figure {name!r}; choose from {', '.join(figure_names())}")
    writable(folder(args.out, "--out"), "--out")  # before computing what the figures need
    for name in names:
        for path in save(name, args.out, tiny=args.tiny, jobs=args.jobs, data_path=args.data):
            print(path)


def cmd_train(args) -> None:
    from .runner import run
    from .train import RunConfig

    cfg = RunConfig(
        hidden=_hidden(args.hidden),
        objective=args.objective,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        bias=not args.no_bias,
        seed=args.seed,
        dataset=args.dataset,
    )
    (result,) = run([cfg], jobs=1, data_path=args.data, desc=cfg.architecture)
    summary = {k: result[k] for k in ("architecture", "diverged", "diverged_at", "final", "dead_units") if k in result}
    print(json.dumps({"config": result["config"], **summary}, indent=2))
    for split, metrics in (result["final"] or {}).items():
        if metrics["loss"] is None:
            note(f"the final {split} loss is infinite or NaN: stored as null")
    if result["diverged"]:
        at = result["diverged_at"]
        print(f"mnist-scratch: the loss became NaN or infinite at epoch {at['epoch']}, step {at['step']}: "
              "recorded as diverged (try a smaller learning rate)", file=sys.stderr)


def cmd_data(args) -> None:
    from .data import SPLITS, load_split

    for split in SPLITS:
        start = time.perf_counter()
        s = load_split(split, data=args.data)
        print(f"{split:10} {len(s):6} images  {time.perf_counter() - start:6.2f} s")


def cmd_report(args) -> None:
    from .render import report

    print(f"report written: {report(jobs=args.jobs, data_path=args.data)}")


NOT_TINY = {  # commands --tiny would change nothing in: refused rather than silently ignored
    "train": "it trains the one run its options describe (--epochs, ...)",
    "data": "the splits are the same for every experiment",
    "report": "the report shows the full experiments (`run --tiny` and `figure --tiny` take it)",
}
COMMANDS = {"report": cmd_report, "list": cmd_list, "run": cmd_run, "figure": cmd_figure, "train": cmd_train, "data": cmd_data}


def _settle_places(args) -> None:
    """Check the folders named on the command line or in the environment, and pass `--cache` and
    `--data` on through the environment: worker processes and the run keys read them there."""
    if args.tiny and args.command in NOT_TINY:
        raise UserError(f"--tiny does not apply to `{args.command}`: {NOT_TINY[args.command]}")
    if args.cache is not None:  # given, even empty: an empty name is an error, not the default
        os.environ[CACHE_ENV] = str(folder(args.cache, "--cache"))
    elif os.environ.get(CACHE_ENV):
        os.environ[CACHE_ENV] = str(folder(os.environ[CACHE_ENV], f"${CACHE_ENV}"))
    if args.data is not None:
        os.environ[DATA_ENV] = args.data = str(expand(args.data, "--data"))
    if args.command in ("run", "figure", "report"):
        from .runner import requested_jobs

        requested_jobs(args.jobs)  # a bad number fails now, not after the first results


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        _settle_places(args)
        COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away (`list | head -1`) shows here, not at exit
    except UserError as e:
        return _error(str(e), e.exit_code)
    except KeyboardInterrupt as e:
        kept = str(e) if isinstance(e, Interrupted) else "nothing finished was lost"
        return _error(f"interrupted; {kept}", 130, kind="")
    except BrokenPipeError:  # stdout closed by its reader: stop quietly, as `yes | head` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except OSError as e:  # the system refused something not checked up front (a full disk, ...)
        return _error(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""), 1)
    except ImportError as e:  # a library that cannot load: usually too little memory to map it
        return _error(f"cannot load {_library(e)} ({' '.join(str(e).split())}){_address_space()}", 1)
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        return _error(f"out of memory{_address_space()} (try fewer --jobs, or smaller networks)", 1)
    return 0


def _library(e: ImportError) -> str:
    """The package whose import failed (torch, when its shared library cannot be mapped)."""
    tb = e.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__") or ""
        if module.split(".")[0] not in ("", "mnist_scratch", "__main__", "importlib"):
            return module.split(".")[0]
        tb = tb.tb_next
    return e.name or "a library"


def _address_space() -> str:
    """Why memory may be short, when this process's address space is limited (`ulimit -v`)."""
    from .memory import address_space_left, gb

    space = address_space_left()
    return "" if space is None else f": this process may map only {gb(space[1])} (ulimit -v {space[1] // 1024})"


def _error(message: str, code: int, kind: str = "error: ") -> int:
    try:
        print(f"{PREFIX}: {kind}{message}", file=sys.stderr)
    except OSError:  # stderr itself closed
        pass
    return code
