"""Tests of the simulated Twitch on its own: they import `twitchsim`, never `sev`."""
