"""See the runner: episode recordings, 2D frames, live window, video, browser replay and plots."""
