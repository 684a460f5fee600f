"""``python -m reposedm_core.train <part> [options]`` — one subcommand per trainable part."""
from __future__ import annotations

import argparse
import importlib
import logging

# subcommand -> module with add_arguments(parser) and run(args)
PARTS = {"field": "reposedm_core.train.field", "transfer": "reposedm_core.train.transfer",
         "estimator": "reposedm_core.train.estimator", "repair": "reposedm_core.train.repair"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reposedm_core.train", description=__doc__)
    sub = parser.add_subparsers(dest="part", required=True, metavar="{" + ",".join(PARTS) + "}")
    modules = {}
    for name, path in PARTS.items():
        module = importlib.import_module(path)
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=module.__doc__.splitlines()[0],
                                            description=module.__doc__,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    modules[args.part].run(args)


if __name__ == "__main__":
    main()
