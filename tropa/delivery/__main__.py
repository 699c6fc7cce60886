"""`python -m tropa.delivery`: a worker process with journeys and every channel queue."""

from __future__ import annotations

import asyncio
import os
import sys

from tropa.dev_secrets import refuse_unsafe_secrets
from tropa.errors import SettingsUnsafe
from tropa.logs import configure
from tropa.settings import Settings
from tropa.worker.processes import run_all


def main() -> None:
    """Run until SIGTERM; leave without interpreter teardown (sdk-python issue 300)."""
    settings = Settings()
    configure(settings.log_level)
    try:
        refuse_unsafe_secrets(settings)
    except SettingsUnsafe as exc:
        print(f"error: {exc}", file=sys.stderr)
        os._exit(2)
    asyncio.run(run_all(settings))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
