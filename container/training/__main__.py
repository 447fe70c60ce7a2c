"""`python -m container.training`: run the training job and exit with its status."""

import sys

from container.training.job import main

sys.exit(main())
