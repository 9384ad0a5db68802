"""`python -m sev.simulator --port N`."""

from sev.simulator.serve import main

raise SystemExit(main())
