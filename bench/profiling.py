"""The bench's two profilers of the server, chosen by option: py-spy's samples (`--profile DIR`,
bench/profile_spy.py) or CPU time with cProfile (`--cprofile DIR`, bench/profile_cprofile.py),
each recording the max-rate pipelines only."""

from __future__ import annotations

import argparse
from pathlib import Path

from profile_cprofile import CpuRecording, enable_for_servers
from profile_cprofile import print_profiles as print_cpu_profiles
from profile_spy import Recording, print_profiles


def prepare(args: argparse.Namespace) -> None:
    """Before any stack starts: cProfile needs its hook in the servers' environment."""
    if args.cprofile is not None:
        enable_for_servers(args.cprofile)


def profile_path(args: argparse.Namespace, scenario: str) -> Path | None:
    """Where this scenario's max-rate pipeline is recorded: a .txt (py-spy) or a .pstats."""
    if args.rate:
        return None
    if args.profile is not None:
        return Path(args.profile) / f"{args.mode}-{scenario}.txt"
    if args.cprofile is not None:
        return Path(args.cprofile) / f"{args.mode}-{scenario}.pstats"
    return None


def recorder(pid: int, profile: Path | None) -> Recording | CpuRecording | None:
    if profile is None:
        return None
    return (Recording if profile.suffix == ".txt" else CpuRecording)(pid, profile)


def print_all(args: argparse.Namespace) -> None:
    if args.profile is not None:
        print_profiles(args.profile)
    if args.cprofile is not None:
        print_cpu_profiles(args.cprofile)
