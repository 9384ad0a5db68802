"""`python -m twitchsim --port N`."""

from twitchsim.serve import main

raise SystemExit(main())
