"""UI strings of the tablet and board pages, per language, and how a page picks its language."""
# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)

from __future__ import annotations

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "live": "Live", "reconnecting": "Reconnecting…", "operator": "Operator",
        "no_operator": "No operator signed in", "sign_in": "Sign in", "sign_out": "Sign out",
        "badge": "Badge", "pin": "PIN", "cancel": "Cancel", "close": "Close",
        "scan_placeholder": "Scan badge or order barcode",
        "scan_hint": "Scan a badge to sign in, or type badge and PIN",
        "state_running": "Running", "state_idle": "Idle", "state_down": "Down",
        "state_setup": "Setup", "state_unknown": "No signal",
        "op_waiting": "Waiting", "op_ready": "Ready", "op_running": "Running",
        "op_paused": "Paused", "op_completed": "Completed", "op_on_hold": "On hold",
        "op_cancelled": "Cancelled",
        "current_operation": "Current operation", "no_operation": "No operation running",
        "pick_from_queue": "Start an operation from the queue on the right.",
        "good": "Good", "scrap": "Scrap", "planned": "Planned", "rework": "Rework",
        "available": "Available", "due": "Due", "order": "Order", "operation": "Operation",
        "material": "Material", "start": "Start", "pause": "Pause", "resume": "Resume",
        "complete": "Complete", "report": "Report quantities", "report_title": "Report",
        "reason": "Reason", "quantity": "Quantity", "save": "Save",
        "queue": "Queue", "queue_empty": "Nothing in the queue",
        "machine_stopped": "Machine stopped", "give_reason": "Why did it stop?",
        "downtimes": "Downtimes", "no_reason": "Reason missing", "since": "since",
        "counted_by_machine": "Counted by the machine", "counted_by_operator": "Counted by hand",
        "saved": "Saved", "refused": "Refused", "confirm_complete": "Complete this operation?",
        "yes": "Yes", "language": "Language", "pick_reason": "Pick a reason",
        "board": "Supervisor board", "work_centers": "Work centers", "wip": "Work in progress",
        "late": "Late", "stalled": "Stalled", "rejected": "Rejected events",
        "overdue": "Overdue", "projected_late": "Projected late",
        "min_idle": "min without a report", "none": "None", "updated": "Updated",
        "status": "Status", "work_center": "Work center", "finish": "Projected finish",
        "when": "When", "source": "Source", "in_queue": "in queue",
        "connect_title": "Connect this tablet", "token": "Access token",
        "token_help": "Paste the station token once. It is kept on this tablet as a secure "
                      "cookie and never shown again.",
        "connect": "Connect", "invalid_token": "This token is not valid or was revoked.",
        "erp_no_ui": "ERP tokens cannot be used on a tablet.",
        "forbidden": "This tablet may not open this page.", "disconnect": "Disconnect tablet",
    },
    "zh": {
        "live": "实时", "reconnecting": "正在重新连接…", "operator": "操作员",
        "no_operator": "未登录操作员", "sign_in": "登录", "sign_out": "退出",
        "badge": "工牌号", "pin": "密码", "cancel": "取消", "close": "关闭",
        "scan_placeholder": "扫描工牌或工单条码",
        "scan_hint": "扫描工牌登录，或输入工牌号和密码",
        "state_running": "运行中", "state_idle": "空闲", "state_down": "停机",
        "state_setup": "换型", "state_unknown": "无信号",
        "op_waiting": "等待中", "op_ready": "就绪", "op_running": "进行中",
        "op_paused": "已暂停", "op_completed": "已完成", "op_on_hold": "已冻结",
        "op_cancelled": "已取消",
        "current_operation": "当前工序", "no_operation": "没有进行中的工序",
        "pick_from_queue": "请从右侧队列中开始一道工序。",
        "good": "良品", "scrap": "废品", "planned": "计划", "rework": "返工",
        "available": "可加工", "due": "交期", "order": "工单", "operation": "工序",
        "material": "物料", "start": "开始", "pause": "暂停", "resume": "继续",
        "complete": "完工", "report": "报工", "report_title": "报工",
        "reason": "原因", "quantity": "数量", "save": "提交",
        "queue": "工序队列", "queue_empty": "队列为空",
        "machine_stopped": "设备停机", "give_reason": "请选择停机原因",
        "downtimes": "停机记录", "no_reason": "未填写原因", "since": "开始于",
        "counted_by_machine": "设备自动计数", "counted_by_operator": "人工报工",
        "saved": "已提交", "refused": "被拒绝", "confirm_complete": "确认完工？",
        "yes": "确认", "language": "语言", "pick_reason": "请选择原因",
        "board": "生产看板", "work_centers": "工作中心", "wip": "在制品",
        "late": "延误", "stalled": "停滞", "rejected": "被拒绝的事件",
        "overdue": "已逾期", "projected_late": "预计延误",
        "min_idle": "分钟无报工", "none": "无", "updated": "更新于",
        "status": "状态", "work_center": "工作中心", "finish": "预计完成",
        "when": "时间", "source": "来源", "in_queue": "排队中",
        "connect_title": "连接此平板", "token": "访问令牌",
        "token_help": "请粘贴一次工位令牌。它将作为安全 Cookie 保存在此平板上，不会再次显示。",
        "connect": "连接", "invalid_token": "令牌无效或已被吊销。",
        "erp_no_ui": "ERP 令牌不能用于平板。",
        "forbidden": "此平板无权打开该页面。", "disconnect": "断开此平板",
    },
}


def pick_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """?lang= first, then the remembered choice, then the browser's Accept-Language."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice  # type: ignore[return-value]
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.split("-")[0].lower()
        if primary in LANGUAGES:
            ranked.append((quality, primary))
    return max(ranked, key=lambda r: r[0])[1] if ranked else DEFAULT  # ties: first named
