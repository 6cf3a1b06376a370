"""Around a refresh: hooks, access, notifications, schedules and on-demand copies."""
