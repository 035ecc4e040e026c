"""cxr.scp_process.share_of and process_count: what each of several SCP processes runs with."""

from __future__ import annotations

from pathlib import Path

from config.settings import ScpSettings, Settings
from cxr.scp_process import process_count, share_of


def test_each_process_takes_its_part_of_the_node_limit_and_the_whole_per_source_limit_within_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, scp=ScpSettings(maximum_associations=10, maximum_associations_per_source=5))
    two = share_of(settings, 2).scp
    assert (two.maximum_associations, two.maximum_associations_per_source) == (5, 5)
    four = share_of(settings, 4).scp
    assert (four.maximum_associations, four.maximum_associations_per_source) == (3, 3)


def test_a_port_the_system_picks_cannot_be_shared(tmp_path: Path) -> None:
    assert process_count(Settings(data_dir=tmp_path, scp=ScpSettings(port=0, processes=4))) == 1
    assert process_count(Settings(data_dir=tmp_path, scp=ScpSettings(port=11112, processes=3))) == 3
