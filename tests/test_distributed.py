"""Voxel chunks on a Dask cluster: same results as in-process, resumable, fault tolerant."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from braincoder.datasets import simulate_prf_2d
from braincoder.models import LinearModel
from braincoder.optimize import ParameterFitter, WeightFitter

distributed = pytest.importorskip("distributed")

XY = np.linspace(-4.0, 4.0, 7)
SD = [0.5, 1.0, 2.0]
SIMULATION = dict(n_voxels=40, grid_size=12, n_sweeps=4, frames_per_sweep=15, seed=1)


@pytest.fixture(scope="module")
def experiment():
    return simulate_prf_2d(**SIMULATION)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def grid(experiment):
    fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    return fitter.fit_grid(x=XY, y=XY, sd=SD)


def test_grid_and_fit_with_a_client_equal_the_in_process_results(experiment, client):
    local = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                            memory_limit=20_000)
    remote = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                             memory_limit=20_000, client=client)
    with distributed.get_task_stream(client) as stream:
        grid = remote.fit_grid(x=XY, y=XY, sd=SD)
    assert len(stream.data) >= 2  # the grid ran as tasks, in several voxel chunks
    pd.testing.assert_frame_equal(grid, local.fit_grid(x=XY, y=XY, sd=SD), check_exact=True)

    reference = local.fit(init_pars=grid, progressbar=False, chunk_size=10)
    estimates = remote.fit(init_pars=grid, progressbar=False, chunk_size=10)
    pd.testing.assert_frame_equal(estimates, reference, check_exact=True)
    pd.testing.assert_series_equal(remote.r2, local.r2, check_exact=True)
    assert remote.fitted_chunks == 4 and remote.resumed_chunks == 0
    assert remote.stop_reason == local.stop_reason
    pd.testing.assert_series_equal(remote.voxel_stop_reasons, local.voxel_stop_reasons)
    # The fit recovers the simulated positions (not only the same numbers twice).
    assert np.corrcoef(estimates["x"], experiment.parameters["x"])[0, 1] > 0.9

    # Adam with a caller's optimizer and confounds (the projector travels to the workers).
    import keras

    confounds = pd.DataFrame({"drift": np.linspace(-1, 1, len(experiment.data))},
                             index=experiment.data.index)
    options = dict(init_pars=grid, progressbar=False, chunk_size=20, max_n_iterations=30,
                   min_n_iterations=30, confounds=confounds)
    adam_reference = local.fit(optimizer=keras.optimizers.Adam(learning_rate=0.05), **options)
    adam = remote.fit(optimizer=keras.optimizers.Adam(learning_rate=0.05), **options)
    pd.testing.assert_frame_equal(adam, adam_reference, check_exact=True)


def test_weight_fitter_with_a_client_equals_the_in_process_result(client):
    rng = np.random.default_rng(0)
    paradigm = rng.normal(size=(80, 4))
    data = paradigm @ rng.normal(size=(4, 25)) + rng.normal(size=(80, 25))
    local = WeightFitter(LinearModel(), None, data, paradigm)
    remote = WeightFitter(LinearModel(), None, data, paradigm, client=client)
    alphas = [0.0, 1.0, 100.0]
    reference = local.fit(alpha=alphas, cv=4, chunk_size=7)
    with distributed.get_task_stream(client) as stream:
        weights = remote.fit(alpha=alphas, cv=4, chunk_size=7)
    assert len(stream.data) == 4
    pd.testing.assert_frame_equal(weights, reference, check_exact=True)
    pd.testing.assert_series_equal(remote.alphas, local.alphas)
    # Chunking does not change a per-voxel ridge solution.
    whole = WeightFitter(LinearModel(), None, data, paradigm).fit(alpha=alphas, cv=4)
    np.testing.assert_allclose(weights.to_numpy(), whole.to_numpy(), rtol=1e-10, atol=1e-12)
    truth = np.linalg.lstsq(paradigm, data, rcond=None)[0]
    chosen = remote.alphas.to_numpy() == 0.0
    np.testing.assert_allclose(weights.to_numpy()[:, chosen], truth[:, chosen], atol=1e-8)


def test_bad_input_is_rejected_before_any_task_is_sent(experiment, client, grid, tmp_path):
    remote = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                             client=client)
    local = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    bad = grid.drop(columns="sd")
    with distributed.get_task_stream(client) as stream:
        with pytest.raises(ValueError, match="sd") as remote_error:
            remote.fit(init_pars=bad, progressbar=False, checkpoint_dir=tmp_path / "c")
        with pytest.raises(TypeError, match="sigma"):
            remote.fit_grid(x=XY, y=XY, sigma=SD)
        with pytest.raises(ValueError, match="chunk_size"):
            remote.fit(init_pars=grid, progressbar=False, chunk_size=0)
        rng = np.random.default_rng(0)
        data = rng.normal(size=(30, 5))
        data[3, 2] = np.nan
        with pytest.raises(ValueError):
            WeightFitter(LinearModel(), None, data, rng.normal(size=(30, 2)),
                         client=client).fit(alpha=[0.0, 1.0], cv=3, chunk_size=2)
    assert stream.data == []
    with pytest.raises(ValueError) as local_error:
        local.fit(init_pars=bad, progressbar=False)
    assert str(remote_error.value) == str(local_error.value)
    assert not (tmp_path / "c").exists()
    with pytest.raises(TypeError, match="distributed.Client"):
        ParameterFitter(experiment.model, experiment.data, experiment.paradigm, client="tcp://x")


def test_checkpoints_are_shared_by_the_in_process_and_distributed_paths(experiment, client,
                                                                        grid, tmp_path):
    directory = tmp_path / "fit-ckpt"
    remote = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                             client=client, log_dir=tmp_path / "tb")
    estimates = remote.fit(init_pars=grid, progressbar=False, chunk_size=10,
                           checkpoint_dir=directory)
    import tensorflow as tf

    steps = [(value.tag, event.step)
             for path in (tmp_path / "tb").rglob("events.*")
             for event in tf.compat.v1.train.summary_iterator(str(path))
             for value in event.summary.value]
    assert sorted(step for tag, step in steps if tag == "chunks/mean_r2") == [0, 1, 2, 3]
    assert sorted(p.name for p in directory.iterdir()) == [
        "chunk-000000.npz", "chunk-000001.npz", "chunk-000002.npz", "chunk-000003.npz",
        "manifest.json"]
    local = ParameterFitter(experiment.model, experiment.data, experiment.paradigm)
    resumed = local.fit(init_pars=grid, progressbar=False, chunk_size=10,
                        checkpoint_dir=directory)
    assert local.resumed_chunks == 4 and local.fitted_chunks == 0
    pd.testing.assert_frame_equal(resumed, estimates, check_exact=True)
    pd.testing.assert_series_equal(local.voxel_iterations, remote.voxel_iterations)
    with pytest.raises(ValueError, match="different fit .*fit options"):
        remote.fit(init_pars=grid, progressbar=False, chunk_size=10, checkpoint_dir=directory,
                   r2_atol=1e-3)
    with pytest.raises(ValueError, match="different fit .*starting values"):
        remote.fit(init_pars=grid + 0.01, progressbar=False, chunk_size=10,
                   checkpoint_dir=directory)


@pytest.mark.slow  # two worker processes start TensorFlow, one of them twice
def test_a_killed_worker_chunk_runs_again_and_the_result_is_unchanged(experiment, grid):
    reference = ParameterFitter(experiment.model, experiment.data, experiment.paradigm).fit(
        init_pars=grid, progressbar=False, chunk_size=5)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                                     client=client)
            outcome = {}

            def run():
                outcome["estimates"] = fitter.fit(init_pars=grid, progressbar=False,
                                                  chunk_size=5)

            thread = threading.Thread(target=run)
            thread.start()
            pids = client.run(os.getpid)
            busy = {}
            deadline = time.monotonic() + 120
            while not busy and time.monotonic() < deadline:
                busy = {worker: keys for worker, keys in client.processing().items() if keys}
                time.sleep(0.005)
            victim = next(iter(busy))
            os.kill(pids[victim], signal.SIGKILL)  # mid-task: its first chunk compiles slowly
            thread.join(timeout=300)
            # TensorFlow in the surviving worker uses the worker's one thread.
            threads = client.run(lambda: __import__("tensorflow").config.threading
                                 .get_intra_op_parallelism_threads())
            assert 1 in threads.values()
    pd.testing.assert_frame_equal(outcome["estimates"], reference, check_exact=True)
    assert fitter.fitted_chunks == 8


DRIVER = textwrap.dedent("""
    import sys

    import numpy as np
    from distributed import Client, LocalCluster

    from braincoder.datasets import simulate_prf_2d
    from braincoder.optimize import ParameterFitter

    if __name__ == "__main__":
        experiment = simulate_prf_2d(**{simulation!r})
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                                     client=client)
            grid = fitter.fit_grid(x={xy!r}, y={xy!r}, sd={sd!r})
            fitter.fit(init_pars=grid, progressbar=False, chunk_size=2,
                       checkpoint_dir=sys.argv[1])
""")


@pytest.mark.slow  # the driver is a separate Python process that starts TensorFlow
def test_a_killed_driver_resumes_without_fitting_a_chunk_twice(experiment, grid, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(simulation=SIMULATION, xy=XY.tolist(), sd=SD))
    directory = tmp_path / "fit-ckpt"
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen([sys.executable, str(script), str(directory)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list(directory.glob("chunk-*.npz"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the driver ended before it was killed"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {path.name: path.stat().st_mtime_ns for path in directory.glob("chunk-*.npz")}
    assert 3 <= len(finished) < 20
    assert not list(directory.glob(".*partial*"))  # no torn files: each chunk is whole or absent

    reference = ParameterFitter(experiment.model, experiment.data, experiment.paradigm).fit(
        init_pars=grid, progressbar=False, chunk_size=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            fitter = ParameterFitter(experiment.model, experiment.data, experiment.paradigm,
                                     client=client)
            estimates = fitter.fit(init_pars=grid, progressbar=False, chunk_size=2,
                                   checkpoint_dir=directory)
    assert fitter.resumed_chunks == len(finished)
    assert fitter.fitted_chunks == 20 - len(finished)
    assert {name: (directory / name).stat().st_mtime_ns for name in finished} == finished
    assert len(list(directory.glob("chunk-*.npz"))) == 20
    pd.testing.assert_frame_equal(estimates, reference, check_exact=True)


def test_command_line_fits_on_a_scheduler_with_the_same_results(client, tmp_path):
    from braincoder.cli import main
    from braincoder.utils.io import read_table

    data = tmp_path / "data"
    assert main(["simulate", "--n-voxels", "12", "--tr", "1.5", "--grid-size", "8",
                 "--frames-per-sweep", "10", "--seed", "1", "--out", str(data)]) == 0
    common = ["fit", "--model", "gaussian_prf_2d_hrf", "--data", data / "bold.tsv",
              "--paradigm", data / "design.npy", "--grid-coordinates", data / "grid.tsv",
              "--tr", "1.5", "--grid-size", "5", "--n-sd", "4", "--max-iterations", "20",
              "--quiet"]
    assert main([str(a) for a in [*common, "--out", tmp_path / "local"]]) == 0
    with distributed.get_task_stream(client) as stream:
        assert main([str(a) for a in [*common, "--out", tmp_path / "remote", "--scheduler",
                                      client.scheduler.address, "--checkpoint-dir",
                                      tmp_path / "ckpt"]]) == 0
    assert len(stream.data) >= 2  # grid and fit chunks ran on the cluster
    assert list((tmp_path / "ckpt").glob("chunk-*.npz"))
    for name in ("parameters.tsv", "r2.tsv"):
        pd.testing.assert_frame_equal(read_table(tmp_path / "remote" / name),
                                      read_table(tmp_path / "local" / name), check_exact=True)
    assert main([str(a) for a in [*common, "--out", tmp_path / "x", "--scheduler", "tcp://h:1",
                                  "--workers", "2"]]) == 2
