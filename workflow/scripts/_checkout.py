"""Put this checkout's ``src/`` first on the import path.

Every script of the workflow imports this module first, so a job runs the lottery_mia
package of the checkout whose Snakefile scheduled it (not another installed copy), with no
environment variable to export. Snakemake puts a script's own folder on the path and sets
``__file__`` to the script's real location, which is how this module is found.

Then, in a local run with a warm worker (:mod:`lottery_mia.jobs.warm`), it hands the job to
the worker, which runs this same script in a process that has already imported torch,
pandas and the package, and exits with that run's status; without one it returns and the
job runs here.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)

from lottery_mia.jobs.warm import delegate  # noqa: E402

delegate(SRC)
