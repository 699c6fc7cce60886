"""`python -m tropa.delivery`: a worker process with journeys and every channel queue."""

from __future__ import annotations

import asyncio
import os
import sys

from tropa.delivery.workers import run_all
from tropa.logs import configure
from tropa.settings import Settings


def main() -> None:
    """Run until SIGTERM; leave without interpreter teardown (sdk-python issue 300)."""
    settings = Settings()
    configure(settings.log_level)
    asyncio.run(run_all(settings))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
