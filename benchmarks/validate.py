"""Validation benchmark: how long validating and compiling a large journey takes.

Run:  .venv/bin/python -m benchmarks.validate [--steps 500] [--repeat 20]

It builds a journey of `--steps` top-level steps (sends with templates, waits, branches with
conditions and nested sends, wait_for with a timeout branch: every kind of work the
validator does) and prints the median and best time of `compile_journey` over `--repeat`
runs, plus the share of the YAML loader, with the template caches warm (the same templates
seen before) and cold (caches cleared before each run: a journey never seen). The very
first run is reported apart: it also loads the step registry. The target is under 50 ms for
500 steps. Times are CPU time of this process, so other load on the machine does not count.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tropa.dsl import expressions
from tropa.dsl.compiler import compile_journey
from tropa.dsl.positions import load_with_positions

_HEADER = """journey: big
description: A journey with many steps
trigger:
  event: cart.updated
  key: "{{ event.data.cart_id }}"
  where: "event.data.total > 100"
exit_on:
  - event: order.placed
    where: "event.data.cart_id == 'c'"
steps:
"""

_BLOCKS = (
    "  - wait: {n}m\n",
    "  - send:\n      channel: sms\n"
    "      text: \"{{{{ customer.first_name }}}}, item {n}: {{{{ event.data.cart_url }}}}\"\n",
    "  - branch:\n      if: \"customer.phone_verified and event.data.total > {n}\"\n"
    "      then:\n        - send: {{channel: email, subject: \"Hi {n}\", "
    "text: \"{{{{ event.data.total | money('RUB') }}}}\"}}\n"
    "      else:\n        - wait: 1d\n",
    "  - wait_for:\n      event: order.paid\n      timeout: 2d\n      on_timeout:\n"
    "        - update_customer: {{add_tags: [t{n}]}}\n",
)


def journey_yaml(steps: int) -> str:
    """A journey of `steps` top-level steps cycling through the block kinds."""
    return _HEADER + "".join(_BLOCKS[i % len(_BLOCKS)].format(n=i) for i in range(1, steps + 1))


def _clear_caches() -> None:
    for name in ("_check_template", "_check_condition", "_template", "_expression"):
        cached = getattr(expressions, name, None)
        if cached is not None:
            cached.cache_clear()


def _time(func: object, text: str, repeat: int, cold: bool = False) -> list[float]:
    times = []
    for _ in range(repeat):
        if cold:
            _clear_caches()
        started = time.process_time()
        func(text, "big.yaml")  # type: ignore[operator]
        times.append((time.process_time() - started) * 1000)
    return times


def _figures(times: list[float]) -> str:
    return f"median {statistics.median(times):.1f} ms, best {min(times):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = journey_yaml(args.steps)
    first = _time(compile_journey, text, 1)[0]
    warm = _time(compile_journey, text, args.repeat)
    cold = _time(compile_journey, text, args.repeat, cold=True)
    loaded = _time(load_with_positions, text, args.repeat)
    plan = compile_journey(text, "big.yaml")
    print(f"journey: {args.steps} top-level steps, {len(text)} bytes, "
          f"{len(plan.model_dump_json())} bytes of Plan; CPU time over {args.repeat} runs")
    print(f"validate+compile, first run of the process: {first:.1f} ms")
    print(f"validate+compile, template caches cold: {_figures(cold)}")
    print(f"validate+compile, template caches warm: {_figures(warm)}")
    print(f"  of which YAML loading with positions: {_figures(loaded)}")


if __name__ == "__main__":
    main()
