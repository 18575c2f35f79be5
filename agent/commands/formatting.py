"""How the commands print money and durations."""


def money(value: float | None) -> str:
    """An amount in USD; an unknown cost says so rather than showing $0."""
    return "unknown" if value is None else f"${value:,.6f}"


def short_money(value: float | None) -> str:
    """An amount for a narrow table column: $0, or 4 decimals (more below a hundredth of a
    cent, so a small cost never shows as $0.0000)."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value >= 0.0001 else f"${value:.2g}"
