"""Code both services import: settings, logging and start-up checks."""
