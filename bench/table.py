"""One row of the `make bench` table: a figure, its value, the target it answers to, and a reference beside it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    section: str
    figure: str
    value: str
    target: str = ""
    reference: str = ""
    # None when the figure has no target; otherwise whether the value meets it.
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return {None: "", True: "yes", False: "**no**"}[self.met]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| section | figure | value | target | met | reference (same run) |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {row.section} | {row.figure} | {row.value} | {row.target} | {row.verdict} | {row.reference} |"
        for row in rows
    ]
    return "\n".join(lines)
