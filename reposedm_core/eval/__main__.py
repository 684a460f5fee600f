"""``python -m reposedm_core.eval <part> [options]`` — one subcommand per evaluated part."""
from __future__ import annotations

import argparse
import importlib
import logging

PARTS = {"align": "reposedm_core.eval.align_real", "field": "reposedm_core.eval.field", "estimator": "reposedm_core.eval.estimator",
         "retarget": "reposedm_core.eval.retarget",
         "transfer": "reposedm_core.eval.transfer", "protocol": "reposedm_core.eval.protocol"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reposedm_core.eval", description=__doc__)
    sub = parser.add_subparsers(dest="part", required=True, metavar="{" + ",".join(PARTS) + "}")
    modules = {}
    for name, path in PARTS.items():
        module = importlib.import_module(path)
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    modules[args.part].run(args)


if __name__ == "__main__":
    main()
