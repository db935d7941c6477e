"""The CPU count every default thread pool is sized from: affinity mask and cgroup quota."""

import os
import subprocess
import sys

import pytest

from facekeypoints import cpus


def test_cgroup_v2_quota_of_the_tightest_level(tmp_path, monkeypatch):
    root = tmp_path / "cg"
    own = root / "box" / "job"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "cpu.max").write_text("max 100000\n")
    (root / "box" / "cpu.max").write_text("150000 100000\n")
    (own / "cpu.max").write_text("max 100000\n")
    monkeypatch.setattr(cpus, "_read", _fake_proc(cpus._read, "0::/box/job\n"))
    assert cpus.cgroup_cpu_limit(root) == pytest.approx(1.5)
    (root / "box" / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_cpu_limit(root) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.cgroup_cpu_limit(tmp_path) == pytest.approx(0.5)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpus.cgroup_cpu_limit(tmp_path) is None


def test_quota_rounds_up_and_never_below_one(monkeypatch):
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda root=None: 0.5)
    assert cpus.available_cpus() == 1
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda root=None: None)
    assert cpus.available_cpus() >= 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_pinned_process_sizes_its_pools_to_one_cpu():
    """Under ``taskset -c 0`` the model's thread pool has one thread, whatever the machine has."""
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from facekeypoints.cpus import available_cpus; from facekeypoints.runtime import KeypointModel;"
        "print(available_cpus(), KeypointModel().threads, KeypointModel(threads=3).threads)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "1", "3"]


def _fake_proc(real_read, text):
    def read(path):
        return text.strip() if str(path) == "/proc/self/cgroup" else real_read(path)

    return read
