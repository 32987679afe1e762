from pathlib import Path

import pytest
import yaml

from bot.config.settings import PROJECT_ROOT
from bot.config.ward import WardSettingsError, load_ward

SAMPLE = PROJECT_ROOT / "settings" / "ward.yml"


def write(tmp_path: Path, changes: dict) -> Path:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "ward.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_sample_ward_is_valid_and_marked_as_sample() -> None:
    ward = load_ward(SAMPLE)
    assert ward.sample is True
    assert "Cửa Lò" in ward.name
    assert ward.office_hours_text().startswith("Thứ Hai: 07:30–11:30")
    assert {"ward_name", "ward_phone", "ward_address", "office_hours"} <= set(ward.placeholders())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"phone": "call us"}, "phone"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"office_hours": {"funday": [["07:00", "11:00"]]}}, "office_hours"),
        ({"office_hours": {"monday": [["11:00", "07:00"]]}}, "office_hours"),
        ({"office_hours": {"monday": [["25:00", "26:00"]]}}, "office_hours"),
        ({"blocks": []}, "blocks"),
        ({"blocks": [{"id": "k1", "name": "A"}, {"id": "k1", "name": "B"}]}, "(top)"),
        ({"appointments": {"slot_minutes": 0}}, "appointments.slot_minutes"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_ward_names_the_field(tmp_path: Path, changes: dict, field: str) -> None:
    with pytest.raises(WardSettingsError) as error:
        load_ward(write(tmp_path, changes))
    assert f"field '{field}" in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(WardSettingsError, match="not found"):
        load_ward(tmp_path / "nope.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(WardSettingsError, match="not valid YAML"):
        load_ward(broken)
