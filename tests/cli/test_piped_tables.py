"""#37 item 5: every table the CLI prints keeps each cell whole on one line when piped (not folded into 80 columns);
on a terminal Rich still fits it to the screen."""

from roost.cli.output import print_table


def test_piped_table_keeps_every_cell_whole(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    cells = [f"2024-01-{d:02d}T00:00:00+00:00" for d in range(1, 6)]  # 5 x 25 characters: wider than 80
    print_table("materialized", ["from", "to", "a", "b", "c"], [cells, cells[::-1]])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "2024-01-" in line]
    assert len(lines) == 2, out  # one line per row: nothing folded onto a second line
    for cell in cells:
        assert cell in lines[0] and cell in lines[1], out
