"""`roost.register_model(None, name, FOLDER)` through a roost server: the client has the files and the server cannot
read them, so the package travels through the artifact proxy inside a run of experiment `models/NAME` (as
MLflow's clients upload a logged model), and the version serves from the server's artifact store."""

from __future__ import annotations

from pathlib import Path

from roost.registry import api, backend
from roost.registry.rest import RestStore


def _package(folder: Path, salt: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "roost-model.yaml").write_text("flavor: test\n")
    (folder / "weights.bin").write_bytes(bytes((i * salt) % 256 for i in range(4096)))
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.txt").write_text(f"salt {salt}\n")
    return folder


def test_a_local_folder_registers_through_the_server(as_client, live_server, tmp_path: Path) -> None:
    assert isinstance(backend.default_store(), RestStore)
    first = _package(tmp_path / "pkg1", 3)
    v1 = api.register_model(None, "folder-model", str(first))
    v2 = api.register_model(None, "folder-model", str(_package(tmp_path / "pkg2", 7)))
    assert (v1.version, v2.version) == (1, 2)
    # the versions live in the server's artifact store, not in this machine's folders
    server_root = (Path(live_server.root) / "artifacts").resolve()
    for v, salt in ((v1, 3), (v2, 7)):
        assert v.run_id is not None and v.source.startswith(f"roost+{live_server.url}/api/v1/artifacts/runs/")
        stored = [f for f in server_root.rglob("weights.bin") if v.run_id in str(f)]
        assert len(stored) == 1 and stored[0].read_bytes() == bytes((i * salt) % 256 for i in range(4096))
        run = api.get_run(v.run_id)
        assert run["experiment"] == "models/folder-model" and run["status"] == "FINISHED"
        got = api.resolve_model(f"folder-model/{v.version}")
        assert got.local_path is not None
        assert (got.local_path / "weights.bin").read_bytes() == bytes((i * salt) % 256 for i in range(4096))
        assert (got.local_path / "sub" / "extra.txt").read_text() == f"salt {salt}\n"
    # removing the client's folder changes nothing on the server
    import shutil

    shutil.rmtree(first)
    got = api.resolve_model("folder-model/1")
    assert got.local_path is not None and (got.local_path / "roost-model.yaml").is_file()


def test_a_missing_folder_is_a_clear_error_and_creates_nothing(as_client, tmp_path: Path) -> None:
    import pytest

    from roost.errors import RoostError

    with pytest.raises(RoostError, match="does not exist"):
        api.register_model(None, "ghost-model", str(tmp_path / "nowhere"))
    assert [m for m in api.list_models() if m["name"] == "ghost-model"] == []
    assert not [e for e in api.list_experiments() if e["name"] == "models/ghost-model"]
