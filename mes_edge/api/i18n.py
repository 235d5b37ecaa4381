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
        "queue_range": "{first}–{last} of {total}", "queue_prev": "Previous page",
        "queue_next": "Next page",
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
        "token_help": "Paste the station token once; it is not shown again.",
        "token_kept_https": "This tablet keeps it in a cookie that page scripts cannot read and "
                            "that is sent only to this server, only over HTTPS.",
        "token_kept_http": "This tablet keeps it in a cookie that page scripts cannot read. "
                           "This connection is plain HTTP: the token crosses the network "
                           "unencrypted, so use HTTPS on any network you do not trust.",
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
        "queue_range": "第 {first}–{last} 项，共 {total} 项", "queue_prev": "上一页",
        "queue_next": "下一页",
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
        "token_help": "请粘贴一次工位令牌，之后不会再次显示。",
        "token_kept_https": "此平板将令牌保存在网页脚本无法读取的 Cookie 中，"
                            "仅通过 HTTPS 发送给本服务器。",
        "token_kept_http": "此平板将令牌保存在网页脚本无法读取的 Cookie 中。当前连接是未加密的 "
                           "HTTP：令牌在网络上以明文传输，在不可信的网络中请使用 HTTPS。",
        "connect": "连接", "invalid_token": "令牌无效或已被吊销。",
        "erp_no_ui": "ERP 令牌不能用于平板。",
        "forbidden": "此平板无权打开该页面。", "disconnect": "断开此平板",
    },
}


#: Station tablet and board strings added for issue 10 (offline state, refusals translated
#: from their code with the numbers the API gives, pause reasons, unassigned production).
#: Placeholders in braces are filled by the page from the refusal's `details`.
_TABLET: dict[str, dict[str, str]] = {
    "en": {
        "offline_title": "OFFLINE", "offline_text": "The MES cannot be reached. Taps are kept "
        "on this tablet and sent as soon as it is back.",
        "storage_title": "NOT SAVED YET", "storage_text": "The MES cannot save right now "
        "(storage unavailable). Taps are kept and retried.",
        "pending": "{n} waiting to be sent",
        "not_sent": "Not sent: no connection. It will be sent automatically.",
        "not_saved": "Not saved yet: the MES storage is unavailable. Retrying.",
        "sent_later": "Sent now: {label}", "needs_connection": "Needs a connection to the MES",
        "outbox_full": "Too many taps waiting to be sent. Wait until the MES is back.",
        "pause_title": "Why are you pausing?", "pause_no_reason": "Pause without reason",
        "stops_missing": "Stops without reason", "nothing_to_report": "Enter a quantity first.",
        "unassigned": "Unassigned production", "unassigned_hint": "Counted while no operation "
        "ran. A supervisor assigns it to an operation or writes it off.",
        "over_produced": "Over plan", "beyond_handover": "Beyond handover",
        "assign": "Assign", "write_off": "Write off", "unassigned_none": "Nothing unassigned",
        "delivery_errors": "Refused by the ERP", "delivery_hint": "The ERP refused these "
        "confirmations; later ones of the same order wait. Fix the cause, then retry, or skip "
        "one that was booked by hand.", "retry": "Retry", "skip": "Skip",
        "skip_reason": "Why skip it (e.g. booked by hand)?",
        "flags": "Flags", "rework": "Rework", "reason_text": "Reason (text)",
        "action_start": "Start", "action_pause": "Pause", "action_resume": "Resume",
        "action_complete": "Complete", "action_report": "Report",
        "action_downtime-reason": "Downtime reason",
        "ord_planned": "planned", "ord_released": "released", "ord_in_progress": "in progress",
        "ord_on_hold": "on hold", "ord_completed": "completed", "ord_closed": "closed",
        "ord_cancelled": "cancelled",
        "rej_over_production": "Too many good parts for {order_id} / {op_no}: at most {limit} "
        "good are allowed ({planned} planned + {tolerance_pct}%), {good} are already reported. "
        "Report at most {room_good} more good, or ask your supervisor.",
        "rej_sequence": "Only {room} more parts can be reported for {order_id} / {op_no}: the "
        "previous operation handed over {handed_over}, {processed} are reported here. Report at "
        "most {room}, or wait until the previous operation hands over more.",
        "rej_sequence_start": "{order_id} / {op_no} cannot start yet: the previous operation "
        "has handed nothing over. Wait for its parts, or start another operation.",
        "rej_sequence_complete": "{order_id} / {op_no} cannot be completed before the previous "
        "operation is completed. Ask the previous station to complete first.",
        "rej_work_center_busy": "{running} is running on this station. Pause or complete it "
        "first.",
        "rej_no_running_operation": "No operation is running on this station. Start one from "
        "the queue first.",
        "rej_bad_state": "{order_id} / {op_no} is {status_text} now, so this is not possible. "
        "Check the queue and tap again.",
        "rej_order_not_active": "Order {order_id} is {order_status_text}. Ask your supervisor "
        "to release it.",
        "rej_counting_source": "{order_id} / {op_no} is counted by the machine: quantities "
        "cannot be entered here.",
        "rej_unknown_reason": "The reason \u201c{reason}\u201d is not offered here. Pick one of "
        "the reasons shown.",
        "rej_absurd_quantity": "That quantity is too large: at most {max_quantity} in one "
        "report. Check the number.",
        "rej_invalid": "The MES cannot accept this entry ({message}). Check it and try again.",
        "rej_unknown_order": "This order is not known to the MES. Check the barcode or ask "
        "your supervisor.",
        "rej_unknown_operation": "This operation is not known to the MES. Check the barcode or "
        "ask your supervisor.",
        "rej_wrong_work_center": "{order_id} / {op_no} belongs to {op_work_center}, not to this "
        "station. Do it there.",
        "rej_unknown_badge": "This badge is not known. Check it, or ask your supervisor to "
        "register it.",
        "rej_wrong_pin": "Wrong PIN. Type it again.",
        "rej_login_throttled": "Too many failed sign-ins at this station. Wait a minute, then "
        "try again.",
        "rej_not_qualified": "Operator {badge} is not qualified for this station. Ask your "
        "supervisor.",
    },
    "zh": {
        "offline_title": "离线",
        "offline_text": "无法连接 MES。操作已保存在此平板上，恢复连接后自动发送。",
        "storage_title": "尚未保存",
        "storage_text": "MES 暂时无法保存（存储不可用）。操作已保留，正在重试。",
        "pending": "{n} 条待发送",
        "not_sent": "未发送：无网络连接。恢复后将自动发送。",
        "not_saved": "尚未保存：MES 存储不可用，正在重试。",
        "sent_later": "已发送：{label}", "needs_connection": "需要连接 MES",
        "outbox_full": "待发送的操作过多。请等待 MES 恢复。",
        "pause_title": "暂停原因？", "pause_no_reason": "不填原因暂停",
        "stops_missing": "停机未填原因", "nothing_to_report": "请先输入数量。",
        "unassigned": "未分配产量",
        "unassigned_hint": "无工序运行时设备计数的产量。由主管分配到工序或核销。",
        "over_produced": "超计划", "beyond_handover": "超出上道转交",
        "assign": "分配", "write_off": "核销", "unassigned_none": "无未分配产量",
        "delivery_errors": "ERP 拒收",
        "delivery_hint": "ERP 拒收了这些报工；同一工单后续报工将等待。"
                         "排除原因后重试，或跳过已手工入账的报工。",
        "retry": "重试", "skip": "跳过",
        "skip_reason": "跳过原因（例如已手工入账）？",
        "flags": "标记", "rework": "返工", "reason_text": "原因（文字）",
        "action_start": "开始", "action_pause": "暂停", "action_resume": "继续",
        "action_complete": "完工", "action_report": "报工",
        "action_downtime-reason": "停机原因",
        "ord_planned": "已计划", "ord_released": "已下达", "ord_in_progress": "生产中",
        "ord_on_hold": "已冻结", "ord_completed": "已完成", "ord_closed": "已关闭",
        "ord_cancelled": "已取消",
        "rej_over_production": "{order_id} / {op_no} 良品过多：最多允许 {limit} 件良品"
        "（计划 {planned} + {tolerance_pct}%），已报 {good} 件。"
        "最多再报 {room_good} 件良品，或联系主管。",
        "rej_sequence": "{order_id} / {op_no} 最多还能报 {room} 件：上道工序转交 {handed_over} 件，"
        "本工序已报 {processed} 件。请最多报 {room} 件，或等待上道工序转交更多。",
        "rej_sequence_start": "{order_id} / {op_no} 还不能开始：上道工序尚未转交任何产品。"
        "请等待上道工序，或开始其他工序。",
        "rej_sequence_complete": "上道工序完工之前，{order_id} / {op_no} 不能完工。"
        "请先让上道工位完工。",
        "rej_work_center_busy": "本工位正在进行 {running}。请先暂停或完工。",
        "rej_no_running_operation": "本工位没有进行中的工序。请先从队列中开始一道工序。",
        "rej_bad_state": "{order_id} / {op_no} 当前为{status_text}，无法执行此操作。"
        "请查看队列后重试。",
        "rej_order_not_active": "工单 {order_id} 状态为{order_status_text}。请联系主管下达。",
        "rej_counting_source": "{order_id} / {op_no} 由设备自动计数，不能在此手工报数。",
        "rej_unknown_reason": "原因“{reason}”在此工位不可用。请从显示的原因中选择。",
        "rej_absurd_quantity": "数量过大：单次最多 {max_quantity}。请检查数量。",
        "rej_invalid": "MES 无法接受此输入（{message}）。请检查后重试。",
        "rej_unknown_order": "MES 中没有此工单。请检查条码或联系主管。",
        "rej_unknown_operation": "MES 中没有此工序。请检查条码或联系主管。",
        "rej_wrong_work_center": "{order_id} / {op_no} 属于 {op_work_center}，不属于本工位。"
        "请在该工位操作。",
        "rej_unknown_badge": "工牌号无效。请检查工牌，或联系主管登记。",
        "rej_wrong_pin": "密码错误，请重新输入。",
        "rej_login_throttled": "本工位登录失败次数过多。请等待一分钟后再试。",
        "rej_not_qualified": "操作员 {badge} 无此工位资质。请联系主管。",
    },
}
for _lang, _extra in _TABLET.items():
    STRINGS[_lang].update(_extra)


#: Alerts (issue 11): kinds, one-line texts with the alert's details, acknowledging.
_ALERTS: dict[str, dict[str, str]] = {
    "en": {
        "alerts_title": "Active alerts", "alerts_none": "No active alerts",
        "acknowledge": "Acknowledge", "alert_since": "since",
        "alert_acked_by": "seen by {who}, {when}",
        "alert_acked_at_station": "seen by {who} at {station}, {when}",
        "alert_escalated": "escalated {when}",
        "kind_order_late": "Order late", "kind_operation_stalled": "Operation stalled",
        "kind_scrap_rate": "Scrap rate", "kind_machine_down": "Machine down",
        "kind_reason_missing": "Reason missing", "kind_device_disconnected": "Device offline",
        "kind_delivery_error": "ERP refused", "kind_unassigned_production": "Unassigned",
        "alert_order_late": "Order {order_id} will miss its due date",
        "alert_operation_stalled": "{order_id}/{operation}: no count for too long",
        "alert_scrap_rate": "Scrap {rate_pct} % ({scrap} of {good} good + scrap)",
        "alert_machine_down": "Down for too long",
        "alert_reason_missing": "A stop has no reason: give it on the tablet",
        "alert_device_disconnected": "Device {device} is not connected",
        "alert_delivery_error": "Confirmation of order {order_id} refused (HTTP {http_status})",
        "alert_unassigned_production": "{good} good, {scrap} scrap wait for a supervisor",
    },
    "zh": {
        "alerts_title": "当前报警", "alerts_none": "没有报警",
        "acknowledge": "确认", "alert_since": "自",
        "alert_acked_by": "{who} 已于 {when} 确认",
        "alert_acked_at_station": "{who} 已于 {when} 在 {station} 确认",
        "alert_escalated": "{when} 已升级",
        "kind_order_late": "订单延误", "kind_operation_stalled": "工序停滞",
        "kind_scrap_rate": "废品率", "kind_machine_down": "设备停机",
        "kind_reason_missing": "缺少原因", "kind_device_disconnected": "设备离线",
        "kind_delivery_error": "ERP 拒收", "kind_unassigned_production": "未分配产量",
        "alert_order_late": "订单 {order_id} 将晚于交期完成",
        "alert_operation_stalled": "{order_id}/{operation}：长时间无计数",
        "alert_scrap_rate": "废品率 {rate_pct} %（合格 {good}，废品 {scrap}）",
        "alert_machine_down": "停机时间过长",
        "alert_reason_missing": "有停机未填写原因：请在平板上填写",
        "alert_device_disconnected": "设备 {device} 未连接",
        "alert_delivery_error": "订单 {order_id} 的报工被拒收（HTTP {http_status}）",
        "alert_unassigned_production": "合格 {good}、废品 {scrap} 等待主管处理",
    },
}
for _lang, _extra in _ALERTS.items():
    STRINGS[_lang].update(_extra)

#: Shift progress (issue 11): OEE figures, the state timeline, the Pareto, the reason tree.
_PROGRESS: dict[str, dict[str, str]] = {
    "en": {
        "shift_title": "Shift", "shift_running": "running shift", "shift_last": "last shift",
        "shift_none": "No shift running", "shift_today": "today (no shift calendar)",
        "oee": "OEE", "availability": "Availability", "performance": "Performance",
        "quality": "Quality", "perf_over": "over 100 %: check the ideal cycle time",
        "downtime_min": "Downtime", "minutes": "min", "micro_stops": "Micro-stops",
        "timeline": "State timeline", "pareto": "Top downtime reasons",
        "pareto_none": "No downtime in this shift", "no_reason_given": "no reason given",
        "other_reasons": "other reasons", "planned_break": "Break",
        "state_blocked": "Blocked", "state_starved": "Starved", "state_planned": "Planned",
        "micro_stop": "micro-stop", "stops_n": "{n} stops", "category": "Category",
        "spans_n": "{n} short spans", "micro_stops_n": "{n} micro-stops",
        "back": "Back", "figures_unavailable": "shift bounds not on 15 minutes",
    },
    "zh": {
        "shift_title": "班次", "shift_running": "当前班次", "shift_last": "上一班次",
        "shift_none": "当前无班次", "shift_today": "今天（无班次日历）",
        "oee": "OEE", "availability": "可用率", "performance": "性能率",
        "quality": "质量率", "perf_over": "超过 100 %：请检查理想节拍",
        "downtime_min": "停机", "minutes": "分钟", "micro_stops": "短暂停机",
        "timeline": "状态时间线", "pareto": "主要停机原因",
        "pareto_none": "本班次无停机", "no_reason_given": "未填写原因",
        "other_reasons": "其他原因", "planned_break": "休息",
        "state_blocked": "堵料", "state_starved": "缺料", "state_planned": "计划停机",
        "micro_stop": "短暂停机", "stops_n": "{n} 次停机", "category": "类别",
        "spans_n": "{n} 个短时段", "micro_stops_n": "{n} 次短暂停机",
        "back": "返回", "figures_unavailable": "班次边界不在 15 分钟整点",
    },
}
for _lang, _extra in _PROGRESS.items():
    for _key, _text in _extra.items():
        STRINGS[_lang].setdefault(_key, _text)  # never override a string another part owns

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
