"""Chart geometry: marker labels that would print over each other go on separate rows."""

from __future__ import annotations

from incidentlens.report.charts import _LABEL_GAP, Marker, _stagger


def test_close_markers_each_get_their_own_label_row():
    # a deploy, the onset a minute later and the peak a few minutes after: all within one label's width
    placed = _stagger([Marker(100.0, "trigger", "trigger"), Marker(104.0, "onset", "onset"),
                       Marker(130.0, "peak", "peak")])
    assert [m.row for m in placed] == [0, 1, 2]


def test_a_label_returns_to_the_first_row_once_it_clears_the_last_one_there():
    placed = _stagger([Marker(100.0, "onset", "onset"), Marker(110.0, "peak", "peak"),
                       Marker(100.0 + _LABEL_GAP, "recovery", "recovery")])
    assert [(m.label, m.row) for m in placed] == [("onset", 0), ("peak", 1), ("recovery", 0)]


def test_with_every_row_taken_the_label_goes_where_there_is_most_room():
    placed = _stagger([Marker(x, kind, kind) for x, kind in
                       [(100.0, "trigger"), (102.0, "onset"), (104.0, "peak"), (106.0, "recovery")]])
    assert [m.row for m in placed] == [0, 1, 2, 0]
