//! `executor = "slurm"`: one batch job per attempt, submitted with `sbatch` and followed by the
//! run's job tracker ([`sbatch`]); the paths the compute nodes must see, checked at the start
//! ([`shared_fs`]).

mod sbatch;
pub(crate) mod shared_fs;

pub(crate) use sbatch::Slurm;
