-- SpiNNaker's protocols for Wireshark: SDP, SCP and EIEIO over UDP.
--
-- Shipped with spinnactors (`spinnactors dissector` prints this file's
-- path, `--install` copies it to Wireshark's personal plugin folder).
-- Load it for one run with `tshark -X lua_script:spinnaker.lua ...`.
--
-- SDP datagrams start with two zero bytes; SCP requests go to SDP port 0
-- of a chip's monitor from the host (port 7, core 31) and responses come
-- back the other way. EIEIO travels bare in UDP (no SDP). UDP port 17893
-- is decoded as SDP/SCP; other ports by the "ports" and "eieio_ports"
-- preferences (Edit > Preferences > Protocols > SPINNAKER, or
-- `-o spinnaker.ports:40000-40010`), and by heuristics that recognise a
-- well-formed SDP/SCP or EIEIO datagram on any UDP port.
--
-- Filter fields: sdp.flags sdp.reply_expected sdp.tag sdp.dest_port
-- sdp.dest_cpu sdp.src_port sdp.src_cpu sdp.dest_chip sdp.src_chip
-- sdp.dest_x sdp.dest_y sdp.src_x sdp.src_y; scp.kind scp.cmd
-- scp.cmd_code scp.seq scp.arg1 scp.arg2 scp.arg3 scp.address
-- scp.length scp.data_length scp.rc scp.rc_code scp.request_in
-- scp.response_in scp.rtt scp.request_cmd scp.resend_of scp.duplicate_of;
-- eieio.kind eieio.type eieio.type_code eieio.count eieio.tag
-- eieio.prefix eieio.prefix_type eieio.payload_base eieio.is_time
-- eieio.key eieio.payload eieio.command eieio.command_code.
-- e.g.  scp.cmd == "CMD_READ"   scp.rc != "RC_OK"   scp.resend_of
--       sdp.dest_chip == "1,0"  eieio.type == "KEY_32_BIT"

-- Names as in spinnactors' messages/scp/enums.py (a test checks they agree).
local SCP_COMMANDS = {
    [0] = "CMD_VER",
    [1] = "CMD_RUN",
    [2] = "CMD_READ",
    [3] = "CMD_WRITE",
    [4] = "CMD_APLX",
    [5] = "CMD_FILL",
    [15] = "CMD_COUNT",
    [16] = "CMD_REMAP",
    [17] = "CMD_LINK_READ",
    [18] = "CMD_LINK_WRITE",
    [19] = "CMD_AR",
    [20] = "CMD_NNP",
    [21] = "CMD_APP_COPY_RUN",
    [22] = "CMD_SIG",
    [23] = "CMD_FFD",
    [24] = "CMD_AS",
    [25] = "CMD_LED",
    [26] = "CMD_IPTAG",
    [27] = "CMD_SROM",
    [28] = "CMD_ALLOC",
    [29] = "CMD_RTR",
    [30] = "CMD_DPRI",
    [31] = "CMD_INFO",
    [32] = "CMD_SYNC",
    [48] = "CMD_BMP_INFO",
    [49] = "CMD_FLASH_COPY",
    [50] = "CMD_FLASH_ERASE",
    [51] = "CMD_FLASH_WRITE",
    [55] = "CMD_RESET",
    [57] = "CMD_BMP_POWER",
    [64] = "CMD_TUBE",
}

local SCP_RESULTS = {
    [0x80] = "RC_OK",
    [0x81] = "RC_LEN",
    [0x82] = "RC_SUM",
    [0x83] = "RC_CMD",
    [0x84] = "RC_ARG",
    [0x85] = "RC_PORT",
    [0x86] = "RC_TIMEOUT",
    [0x87] = "RC_ROUTE",
    [0x88] = "RC_CPU",
    [0x89] = "RC_DEAD",
    [0x8A] = "RC_BUF",
    [0x8B] = "RC_P2P_NOREPLY",
    [0x8C] = "RC_P2P_REJECT",
    [0x8D] = "RC_P2P_BUSY",
    [0x8E] = "RC_P2P_TIMEOUT",
    [0x8F] = "RC_PKT_TX",
}

-- As in messages/eieio/types.py.
local EIEIO_TYPES = {
    [0] = "KEY_16_BIT",
    [1] = "KEY_PAYLOAD_16_BIT",
    [2] = "KEY_32_BIT",
    [3] = "KEY_PAYLOAD_32_BIT",
}

-- As in SpiNNMan's EIEIO_COMMAND_IDS.
local EIEIO_COMMANDS = {
    [1] = "DATABASE",
    [2] = "EVENT_PADDING",
    [3] = "EVENT_STOP",
    [4] = "STOP_SENDING_REQUESTS",
    [5] = "START_SENDING_REQUESTS",
    [6] = "SPINNAKER_REQUEST_BUFFERS",
    [7] = "HOST_SEND_SEQUENCED_DATA",
    [8] = "SPINNAKER_REQUEST_READ_DATA",
    [9] = "HOST_DATA_READ",
    [10] = "STOP_PAUSE_NOTIFICATION",
    [11] = "START_RESUME_NOTIFICATION",
    [12] = "HOST_DATA_READ_ACK",
}

local SCP_PORT = 17893
-- The host's SDP port and core (7, 31) packed as a header byte.
local HOST_PORT_CPU = 0xFF

-- ``width`` bits of ``value`` from bit ``shift`` up (plain arithmetic:
-- Wireshark's Lua is 5.2 on some systems, 5.4 on others).
local function bits(value, shift, width)
    return math.floor(value / 2 ^ shift) % 2 ^ width
end

local function name_of(names, value)
    return names[value] or string.format("UNKNOWN_%d", value)
end

-- -- protocols and fields ------------------------------------------------------

local sdp = Proto("spinnaker", "SpiNNaker SDP")
local scp = Proto("scp", "SpiNNaker Command Protocol")
local eieio = Proto("eieio", "SpiNNaker EIEIO")

local F = {
    padding = ProtoField.bytes("sdp.padding", "Padding"),
    flags = ProtoField.uint8("sdp.flags", "Flags", base.HEX),
    reply_expected = ProtoField.bool("sdp.reply_expected", "Reply expected", 8, nil, 0x80),
    tag = ProtoField.uint8("sdp.tag", "IP tag", base.DEC),
    dest_port = ProtoField.uint8("sdp.dest_port", "Destination port", base.DEC, nil, 0xE0),
    dest_cpu = ProtoField.uint8("sdp.dest_cpu", "Destination core", base.DEC, nil, 0x1F),
    src_port = ProtoField.uint8("sdp.src_port", "Source port", base.DEC, nil, 0xE0),
    src_cpu = ProtoField.uint8("sdp.src_cpu", "Source core", base.DEC, nil, 0x1F),
    dest_y = ProtoField.uint8("sdp.dest_y", "Destination chip y"),
    dest_x = ProtoField.uint8("sdp.dest_x", "Destination chip x"),
    src_y = ProtoField.uint8("sdp.src_y", "Source chip y"),
    src_x = ProtoField.uint8("sdp.src_x", "Source chip x"),
    dest_chip = ProtoField.string("sdp.dest_chip", "Destination chip (x,y)"),
    src_chip = ProtoField.string("sdp.src_chip", "Source chip (x,y)"),
    sdp_data = ProtoField.bytes("sdp.data", "Data"),
}
sdp.fields = F

local S = {
    kind = ProtoField.string("scp.kind", "Kind"),
    cmd = ProtoField.string("scp.cmd", "Command"),
    cmd_code = ProtoField.uint16("scp.cmd_code", "Command number", base.DEC),
    seq = ProtoField.uint16("scp.seq", "Sequence", base.DEC),
    arg1 = ProtoField.uint32("scp.arg1", "Argument 1", base.HEX),
    arg2 = ProtoField.uint32("scp.arg2", "Argument 2", base.HEX),
    arg3 = ProtoField.uint32("scp.arg3", "Argument 3", base.HEX),
    address = ProtoField.uint32("scp.address", "Address", base.HEX),
    length = ProtoField.uint32("scp.length", "Length", base.DEC),
    data_length = ProtoField.uint32("scp.data_length", "Data length", base.DEC),
    data = ProtoField.bytes("scp.data", "Data"),
    rc = ProtoField.string("scp.rc", "Result"),
    rc_code = ProtoField.uint16("scp.rc_code", "Result code", base.HEX),
    request_in = ProtoField.framenum("scp.request_in", "Request in frame", base.NONE, frametype.REQUEST),
    response_in = ProtoField.framenum("scp.response_in", "Response in frame", base.NONE, frametype.RESPONSE),
    rtt = ProtoField.relative_time("scp.rtt", "Round trip"),
    request_cmd = ProtoField.string("scp.request_cmd", "Request's command"),
    resend_of = ProtoField.framenum("scp.resend_of", "Resend of the request in frame"),
    duplicate_of = ProtoField.framenum("scp.duplicate_of", "Duplicate of the response in frame"),
}
scp.fields = S

local E = {
    kind = ProtoField.string("eieio.kind", "Kind"),
    type = ProtoField.string("eieio.type", "Type"),
    type_code = ProtoField.uint8("eieio.type_code", "Type code", base.DEC, nil, 0x0C),
    count = ProtoField.uint8("eieio.count", "Count", base.DEC),
    flags = ProtoField.uint8("eieio.flags", "Flags", base.HEX),
    has_prefix = ProtoField.bool("eieio.has_prefix", "Key prefix follows", 8, nil, 0x80),
    prefix_type = ProtoField.string("eieio.prefix_type", "Prefix type"),
    has_base = ProtoField.bool("eieio.has_payload_base", "Payload base follows", 8, nil, 0x20),
    is_time = ProtoField.bool("eieio.is_time", "Payloads are timestamps", 8, nil, 0x10),
    tag = ProtoField.uint8("eieio.tag", "Tag", base.DEC, nil, 0x03),
    prefix = ProtoField.uint16("eieio.prefix", "Key prefix", base.HEX),
    payload_base = ProtoField.uint32("eieio.payload_base", "Payload base", base.HEX),
    key = ProtoField.uint32("eieio.key", "Key", base.HEX),
    payload = ProtoField.uint32("eieio.payload", "Payload", base.HEX),
    command = ProtoField.string("eieio.command", "Command"),
    command_code = ProtoField.uint16("eieio.command_code", "Command number", base.DEC, nil, 0x3FFF),
    command_data = ProtoField.bytes("eieio.command_data", "Command data"),
}
eieio.fields = E

sdp.prefs.ports = Pref.range("SDP/SCP UDP ports", tostring(SCP_PORT),
    "UDP ports to decode as SpiNNaker SDP/SCP", 65535)
sdp.prefs.eieio_ports = Pref.range("EIEIO UDP ports", "",
    "UDP ports to decode as bare EIEIO (a stripped IP tag's traffic)", 65535)
sdp.prefs.heuristics = Pref.bool("Recognise SDP/SCP and EIEIO on any port", true,
    "Try the heuristics on UDP ports not named above")

-- -- request and response matching ------------------------------------------------

-- By conversation and sequence number: the latest request sent with it.
local open_requests = {}
-- By frame number, what the first pass found (later passes show the same).
local frame_info = {}

function sdp.init()
    open_requests = {}
    frame_info = {}
end

local function key_of(host, host_port, board, board_port, seq)
    return tostring(host) .. ":" .. host_port .. ">" .. tostring(board) .. ":"
        .. board_port .. "#" .. seq
end

local function note_request(pinfo, seq, cmd, body)
    local info = frame_info[pinfo.number]
    if info == nil and not pinfo.visited then
        local key = key_of(pinfo.src, pinfo.src_port, pinfo.dst, pinfo.dst_port, seq)
        local earlier = open_requests[key]
        info = { request = true }
        if earlier ~= nil and earlier.answer == nil and earlier.body == body then
            info.resend_of = earlier.first
        end
        open_requests[key] = {
            frame = pinfo.number,
            first = info.resend_of or pinfo.number,
            time = pinfo.abs_ts,
            cmd = cmd,
            body = body,
            info = info,
        }
        frame_info[pinfo.number] = info
    end
    return info or {}
end

local function note_response(pinfo, seq)
    local info = frame_info[pinfo.number]
    if info == nil and not pinfo.visited then
        local key = key_of(pinfo.dst, pinfo.dst_port, pinfo.src, pinfo.src_port, seq)
        local request = open_requests[key]
        info = {}
        if request ~= nil then
            info.request_in = request.frame
            info.rtt = pinfo.abs_ts - request.time
            info.cmd = request.cmd
            if request.answer ~= nil then
                info.duplicate_of = request.answer
            else
                request.answer = pinfo.number
                request.info.response_in = pinfo.number
            end
        end
        frame_info[pinfo.number] = info
    end
    return info or {}
end

-- -- SCP ---------------------------------------------------------------------------

local function dissect_scp(tvb, pinfo, tree, is_request)
    local length = tvb:len()
    if length < 4 then
        return
    end
    local t = tree:add(scp, tvb())
    local seq = tvb(2, 2):le_uint()
    if is_request then
        local code = tvb(0, 2):le_uint()
        local cmd = name_of(SCP_COMMANDS, code)
        local body = tvb(0, 2):bytes():tohex() .. tvb(4):bytes():tohex()
        local info = note_request(pinfo, seq, cmd, body)
        t:add(S.kind, "request"):set_generated()
        t:add(S.cmd, tvb(0, 2), cmd)
        t:add_le(S.cmd_code, tvb(0, 2))
        t:add_le(S.seq, tvb(2, 2))
        local args = {}
        local fields = { S.arg1, S.arg2, S.arg3 }
        for i = 1, 3 do
            local at = 4 * i
            if length >= at + 4 then
                args[i] = tvb(at, 4):le_uint()
                t:add_le(fields[i], tvb(at, 4))
            end
        end
        if (code == 2 or code == 3 or code == 5) and args[2] ~= nil then
            t:add(S.address, tvb(4, 4), args[1]):set_generated()
            t:add(S.length, tvb(8, 4), args[2]):set_generated()
        end
        local data = math.max(0, length - 16)
        t:add(S.data_length, data):set_generated()
        if data > 0 then
            t:add(S.data, tvb(16))
        end
        if info.resend_of ~= nil then
            t:add(S.resend_of, info.resend_of):set_generated()
        end
        if info.response_in ~= nil then
            t:add(S.response_in, info.response_in):set_generated()
        end
        t:append_text(string.format(", %s, seq %d", cmd, seq))
        pinfo.cols.info:set(string.format("%s seq=%d%s", cmd, seq,
            info.resend_of and string.format(" [resend of %d]", info.resend_of) or ""))
    else
        local code = tvb(0, 2):le_uint()
        local rc = name_of(SCP_RESULTS, code)
        local info = note_response(pinfo, seq)
        t:add(S.kind, "response"):set_generated()
        t:add(S.rc, tvb(0, 2), rc)
        t:add_le(S.rc_code, tvb(0, 2))
        t:add_le(S.seq, tvb(2, 2))
        t:add(S.data_length, length - 4):set_generated()
        if length > 4 then
            t:add(S.data, tvb(4))
        end
        if info.request_in ~= nil then
            t:add(S.request_in, info.request_in):set_generated()
            local whole = math.floor(info.rtt)
            local rtt = NSTime.new(whole, math.floor((info.rtt - whole) * 1e9 + 0.5))
            t:add(S.rtt, tvb(0, 0), rtt):set_generated()
            t:add(S.request_cmd, info.cmd):set_generated()
        end
        if info.duplicate_of ~= nil then
            t:add(S.duplicate_of, info.duplicate_of):set_generated()
        end
        t:append_text(string.format(", %s, seq %d", rc, seq))
        pinfo.cols.info:set(string.format("%s seq=%d%s%s", rc, seq,
            info.cmd and (" (" .. info.cmd .. ")") or "",
            info.duplicate_of and string.format(" [duplicate of %d]", info.duplicate_of) or ""))
    end
    pinfo.cols.protocol = "SCP"
end

-- -- SDP ---------------------------------------------------------------------------

local function looks_like_sdp(tvb)
    if tvb:len() < 10 or tvb(0, 2):uint() ~= 0 then
        return false
    end
    local flags = tvb(2, 1):uint()
    return flags == 0x07 or flags == 0x87
end

local function dissect_sdp(tvb, pinfo, tree)
    if tvb:len() < 10 then
        return 0
    end
    pinfo.cols.protocol = "SDP"
    local t = tree:add(sdp, tvb())
    t:add(F.padding, tvb(0, 2))
    local flags = tvb(2, 1)
    local flag_tree = t:add(F.flags, flags)
    flag_tree:add(F.reply_expected, flags)
    t:add(F.tag, tvb(3, 1))
    local dest, src = tvb(4, 1):uint(), tvb(5, 1):uint()
    t:add(F.dest_port, tvb(4, 1))
    t:add(F.dest_cpu, tvb(4, 1))
    t:add(F.src_port, tvb(5, 1))
    t:add(F.src_cpu, tvb(5, 1))
    local dy, dx, sy, sx = tvb(6, 1):uint(), tvb(7, 1):uint(), tvb(8, 1):uint(), tvb(9, 1):uint()
    t:add(F.dest_y, tvb(6, 1))
    t:add(F.dest_x, tvb(7, 1))
    t:add(F.src_y, tvb(8, 1))
    t:add(F.src_x, tvb(9, 1))
    t:add(F.dest_chip, tvb(6, 2), string.format("%d,%d", dx, dy)):set_generated()
    t:add(F.src_chip, tvb(8, 2), string.format("%d,%d", sx, sy)):set_generated()
    t:append_text(string.format(", %d,%d,%d > %d,%d,%d", sx, sy, bits(src, 0, 5), dx, dy, bits(dest, 0, 5)))
    pinfo.cols.info:set(string.format("SDP %d,%d,%d:%d > %d,%d,%d:%d", sx, sy,
        bits(src, 0, 5), bits(src, 5, 3), dx, dy, bits(dest, 0, 5), bits(dest, 5, 3)))
    if tvb:len() > 10 then
        local body = tvb(10)
        if src == HOST_PORT_CPU and bits(dest, 5, 3) == 0 then
            dissect_scp(body, pinfo, tree, true)
        elseif dest == HOST_PORT_CPU and bits(src, 5, 3) == 0 then
            dissect_scp(body, pinfo, tree, false)
        else
            t:add(F.sdp_data, body)
        end
    end
    return tvb:len()
end

sdp.dissector = dissect_sdp

-- -- EIEIO ---------------------------------------------------------------------------

-- The size of a data message, or nil if the header cannot be EIEIO data.
local function eieio_data_size(tvb)
    if tvb:len() < 2 then
        return nil
    end
    local count, flags = tvb(0, 1):uint(), tvb(1, 1):uint()
    if bits(flags, 6, 2) == 1 then
        return nil
    end
    local kind = bits(flags, 2, 2)
    local key = bits(kind, 1, 1) == 1 and 4 or 2
    local element = key + (bits(kind, 0, 1) == 1 and key or 0)
    local size = 2
    if bits(flags, 7, 1) == 1 then
        size = size + 2
    end
    if bits(flags, 5, 1) == 1 then
        size = size + key
    end
    return size + count * element, size, key, element
end

local function looks_like_eieio(tvb)
    local length = tvb:len()
    if length < 2 then
        return false
    end
    local header = tvb(0, 2):le_uint()
    if bits(header, 14, 2) == 1 then
        return EIEIO_COMMANDS[bits(header, 0, 14)] ~= nil
    end
    local size = eieio_data_size(tvb)
    return size ~= nil and size == length and tvb(0, 1):uint() > 0
end

local function dissect_eieio(tvb, pinfo, tree)
    local length = tvb:len()
    if length < 2 then
        return 0
    end
    pinfo.cols.protocol = "EIEIO"
    local t = tree:add(eieio, tvb())
    local header = tvb(0, 2):le_uint()
    if bits(header, 14, 2) == 1 then
        local code = bits(header, 0, 14)
        local name = name_of(EIEIO_COMMANDS, code)
        t:add(E.kind, "command"):set_generated()
        t:add(E.command, tvb(0, 2), name)
        t:add_le(E.command_code, tvb(0, 2))
        if length > 2 then
            t:add(E.command_data, tvb(2))
        end
        t:append_text(", command " .. name)
        pinfo.cols.info:set("EIEIO command " .. name)
        return length
    end
    local count, flags = tvb(0, 1):uint(), tvb(1, 1):uint()
    local kind = bits(flags, 2, 2)
    local type_name = EIEIO_TYPES[kind]
    local _, header_size, key_size, element = eieio_data_size(tvb)
    t:add(E.kind, "data"):set_generated()
    t:add(E.count, tvb(0, 1))
    local ft = t:add(E.flags, tvb(1, 1))
    ft:add(E.has_prefix, tvb(1, 1))
    ft:add(E.has_base, tvb(1, 1))
    ft:add(E.is_time, tvb(1, 1))
    ft:add(E.type_code, tvb(1, 1))
    ft:add(E.tag, tvb(1, 1))
    t:add(E.type, tvb(1, 1), type_name)
    local at = 2
    if bits(flags, 7, 1) == 1 and length >= at + 2 then
        t:add(E.prefix_type, tvb(1, 1), (bits(flags, 6, 1) == 1) and "UPPER_HALF_WORD" or "LOWER_HALF_WORD")
        t:add_le(E.prefix, tvb(at, 2))
        at = at + 2
    end
    if bits(flags, 5, 1) == 1 and length >= at + key_size then
        t:add_le(E.payload_base, tvb(at, key_size))
        at = at + key_size
    end
    local shown = 0
    while shown < count and length >= at + element do
        t:add_le(E.key, tvb(at, key_size))
        if element > key_size then
            t:add_le(E.payload, tvb(at + key_size, key_size))
        end
        at = at + element
        shown = shown + 1
    end
    if shown < count then
        t:add_expert_info(PI_MALFORMED, PI_ERROR,
            string.format("%d elements announced, %d present", count, shown))
    end
    t:append_text(string.format(", %s, %d elements", type_name, count))
    pinfo.cols.info:set(string.format("EIEIO %s count=%d tag=%d", type_name, count, bits(flags, 0, 2)))
    return length
end

eieio.dissector = dissect_eieio

-- -- registration ------------------------------------------------------------------

local udp_table = DissectorTable.get("udp.port")

local current = { sdp = "", eieio = "" }

local function register_ports()
    if current.sdp ~= "" then
        udp_table:remove(current.sdp, sdp)
    end
    if current.eieio ~= "" then
        udp_table:remove(current.eieio, eieio)
    end
    current.sdp = sdp.prefs.ports
    current.eieio = sdp.prefs.eieio_ports
    if current.sdp ~= "" then
        udp_table:add(current.sdp, sdp)
    end
    if current.eieio ~= "" then
        udp_table:add(current.eieio, eieio)
    end
end

function sdp.prefs_changed()
    register_ports()
end

register_ports()

local function heuristic(tvb, pinfo, tree)
    if not sdp.prefs.heuristics then
        return false
    end
    if looks_like_sdp(tvb) then
        dissect_sdp(tvb, pinfo, tree)
        return true
    end
    if looks_like_eieio(tvb) then
        dissect_eieio(tvb, pinfo, tree)
        return true
    end
    return false
end

sdp:register_heuristic("udp", heuristic)
