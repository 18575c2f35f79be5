"""The tools the model calls. `tools` never imports `agent`."""

from tools.base import Tool, ToolContext, ToolResult
from tools.evidence import EVIDENCE_TOOLS
from tools.playbook import PLAYBOOK_TOOLS
from tools.postmortem import POSTMORTEM_TOOLS
from tools.projects import PROJECT_TOOLS

TOOLS: dict[str, Tool] = {t.name: t for t in [*PROJECT_TOOLS, *EVIDENCE_TOOLS, *POSTMORTEM_TOOLS,
                                              *PLAYBOOK_TOOLS]}

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolResult"]
