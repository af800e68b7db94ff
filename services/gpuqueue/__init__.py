"""The machine-wide GPU queue that the whole team's fine-tunes and loaded chat models share.

A shared state folder (default `/var/lib/llm-workbench`, made by `workbench server init`) holds
one entry per waiting or running job, a lock file per GPU and each user's GPU time. Every lock is
an `flock` the kernel drops when its process dies, so a killed job never blocks the queue. When
several users wait, the next free GPUs go to the user with the least GPU time in a rolling window.
Without a shared folder the same queue lives in the user's workspace.

- `folder`: where the queue lives, its policy and permissions, and `workbench server init`.
- `entries`: one record per job or chat model, alive while its process holds its lock.
- `fair`: the pure choice of who goes next.
- `slots`: the GPUs (or the one CPU slot) and their locks.
- `queue`: waiting a turn, holding GPUs, the view everyone sees, cancel requests.
"""
