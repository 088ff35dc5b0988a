/** What every container of the backend shares: its PID 1. */

/** PID 1 of our containers: a shell that reaps orphaned processes and exits on SIGTERM. */
export const REAPER = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait; done"];
