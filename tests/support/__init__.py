"""What every test folder shares. Test modules import from here, never from one another:

    from tests.support.server import start_serve      # or the `serve` fixture (tests/conftest.py)

- `paths`: REPO, LOCAL_TEST, PEER_DATA.
- `waiting`: `wait_until` a condition with a deadline, `wait_for_ping`.
- `opt_ml`: `make_job`, the one builder of `/opt/ml` trees; `script_mode_job`.
- `server`: the real `./serve` on 127.0.0.1 (`start_serve`, `running_server`), its workers,
  its listener and the connections they hold, read from /proc.
- `distributed`: data, trees and scores of the multi-host tests (processes and containers).
- `local_cluster`: hosts as `./train` processes on this machine (`LocalCluster`, `wait_all`).
- `python_metrics`: scikit-learn's value of each Python metric; round lines read back.
- `model_archives`: model.tar.gz extracted as a multi-model endpoint is handed it.
- `docker`: the engine, project scripts, the script-mode wheels.
- `churn`: the script-mode example's SHAP answers.
- `filesystems`: a small tmpfs for full-disk tests.

Ports and process groups come from `bench.processes` (`free_port`, `start_group`), which the
benchmarks use too.

`tests/` is one package (every folder has an `__init__.py`), so pytest puts the checkout on
`sys.path` and these import as `tests.support.*` from any folder.
"""
