"""How the commands print money and durations."""


def money(value: float | None) -> str:
    """An amount in USD; an unknown cost says so rather than showing $0."""
    return "unknown" if value is None else f"${value:,.6f}"
