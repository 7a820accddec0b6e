"""``wingman gateway bench`` (filled in below)."""

import argparse


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url")


def run_bench(args: argparse.Namespace) -> int:
    raise NotImplementedError
