"""`ndt track` on Dask workers started as SLURM jobs by dask-jobqueue (docs/scale.md).

Run it where the replay should be driven from (the login node, or a job of its own) for as
long as the replay lasts: ``python slurm_dask.py``. Needs ``pip install dask-jobqueue``.
"""

from dask_jobqueue import SLURMCluster  # PBS, SGE: resource_spec; LSF: ncpus (for job_cpu)

from ndt.replay.track import track

CPUS = 8  # cores of each job, all for the torch threads of its one task at a time
JOBS = 8  # jobs, hence workers, hence checkpoints replayed at once


def slurm_cluster() -> SLURMCluster:
    """One Dask worker per job, running one task (one checkpoint, one model) at a time."""
    return SLURMCluster(
        cores=1,  # Dask threads per job: one task at a time
        processes=1,  # one worker process per job: one model per job
        job_cpu=CPUS,  # what SLURM books: --cpus-per-task
        memory="16GB",
        walltime="04:00:00",
        job_extra_directives=["--output=logs/dask-worker-%j.out"],
    )


def main() -> None:
    cluster = slurm_cluster()
    cluster.scale(jobs=JOBS)
    try:
        report = track(
            "/scratch/me/pythia-160m/ckpts",
            probe="/scratch/me/probe.safetensors",
            out="results/pythia-160m.h5",
            scheduler=cluster.scheduler_address,
            threads=CPUS,  # torch threads of each task
        )
    finally:
        cluster.close()
    print(f"{len(report.computed)} computed, {len(report.skipped)} already there")


if __name__ == "__main__":
    main()
