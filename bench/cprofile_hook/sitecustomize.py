"""CPU-time profiling of the server under the bench (`bench/mqim_bench.py --cprofile DIR`).

The bench puts this directory on the PYTHONPATH of the processes it starts, so Python loads this
file at their start. With BENCH_CPROFILE_OUT set, SIGUSR1 starts a cProfile of the main thread
timed by the process's CPU clock, and SIGUSR2 stops it and writes it to
`$BENCH_CPROFILE_OUT.<pid>`. Nothing of mqim changes, and without the variable nothing happens.
"""

import os

if os.environ.get("BENCH_CPROFILE_OUT"):
    import cProfile
    import signal
    import time
    from typing import Any

    _profile = cProfile.Profile(time.process_time)

    def _start(*_: Any) -> None:
        _profile.enable()

    def _stop(*_: Any) -> None:
        _profile.disable()
        path = f"{os.environ['BENCH_CPROFILE_OUT']}.{os.getpid()}"
        _profile.dump_stats(path + ".part")
        os.replace(path + ".part", path)  # whole, or not there yet

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
