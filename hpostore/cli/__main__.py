"""``python -m hpostore.cli``: the ``hpostore`` command."""

import sys

from . import main

sys.exit(main())
