"""Grading past one machine: a class graded by workers on several hosts.

    make grade-queue AID=01_dataset          # the instructor: submit, watch done/failed/queued
    python -m nopos.grading.distributed.worker   # each grading host (or pod, or SLURM job)

Design. The engine is Celery 5 with a Redis broker (AOF persistence) and the
gradebook in PostgreSQL through nbgrader's own `db_url`. The instructor's machine
is the producer (`submit`): it runs the one-machine intake on every submission
(`batch.intake`) and sends one task per submission, signed with the grader's key,
carrying the repaired submission itself. A worker (`worker`) verifies the
signature, grades that one submission exactly as `make grade-class` does
(`batch._grade_private`: a real `nbgrader autograde --student` in a private copy
of the course, the course's sandbox and out-of-kernel judge) and writes the
result into PostgreSQL in one transaction with a line of the ledger (`ledger`).

What each worker needs, and nothing else: this package at the version the
producer runs (the course's nbgrader_config.py and source notebooks come with
it; every task carries a digest of them and a worker with other ones refuses to
grade), root with namespaces for the sandbox, the broker's URL and the
gradebook's (credentials from the environment), the grader's certificate (to
verify tasks) and a key of its own. Submissions travel in the task; no file
system is shared.

Nothing lost, nothing twice: tasks are acknowledged after grading
(`acks_late`), so a worker that dies mid-grade leaves its task to another
(`task_reject_on_worker_lost` when the grading process dies; the broker's
visibility timeout when the whole host does). Every start is a ledger line;
past `MAX_ATTEMPTS` starts the submission is recorded as not graded, saying why.
A result is written at most once per submission (a unique index of the ledger,
checked under a lock in the transaction that writes the grades).

Rejected: Dask distributed (its scheduler takes any client's code, with no
authentication by default, and workers are long-lived processes with no
per-task isolation: any client can run code on every grading host); Ray (same
trust model, a cluster runtime far heavier than a course needs); Kubernetes Jobs
alone (no queue outside a cluster, so nothing for a university's SLURM
machines or a lab of desktops; the Deployment in hub/kubernetes/ runs these
same workers). docs/grading-at-scale.md has the comparison.
"""
