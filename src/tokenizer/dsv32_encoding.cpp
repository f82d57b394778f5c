// SPDX-License-Identifier: MIT
// DeepSeek-V3.2's encoder and completion parser (see dsv32_encoding.h). The structure follows the Python file
// function by function, including its quirks (Python's messages[-1] for a leading tool result, the index shift after
// drop_thinking removes a developer message), so that every input it accepts gives the same bytes and every input it
// rejects throws.
#include "tokenizer/dsv32_encoding.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "base/error.h"

namespace ds::tok::dsv32 {

namespace {

using oj = nlohmann::ordered_json;

constexpr std::string_view kUser = "<｜User｜>", kAssistant = "<｜Assistant｜>", kDsml = "｜DSML｜";
constexpr std::string_view kResponseFormat =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";
// TOOLS_SYSTEM_TEMPLATE with its tokens filled in; the tools' JSON lines go between the two halves.
constexpr std::string_view kToolsHead = R"(## Tools

You have access to a set of tools you can use to answer the user's question.
You can invoke functions by writing a "<｜DSML｜function_calls>" block like the following as part of your reply to the user:
<｜DSML｜function_calls>
<｜DSML｜invoke name="$FUNCTION_NAME">
<｜DSML｜parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</｜DSML｜parameter>
...
</｜DSML｜invoke>
<｜DSML｜invoke name="$FUNCTION_NAME2">
...
</｜DSML｜invoke>
</｜DSML｜function_calls>

String and scalar parameters should be specified as is without any escaping or quotes, while lists and objects should use JSON format. The "string" attribute should be set to "true" for string type parameters and "false" for other types (numbers, booleans, arrays, objects).

If the thinking_mode is enabled, then after function results you should strongly consider outputting a thinking block. Here is an example:

<｜DSML｜function_calls>
...
</｜DSML｜function_calls>

<function_results>
...
</function_results>

<think>...thinking about results</think>

Here are the functions available in JSONSchema format:
<functions>
)";
constexpr std::string_view kToolsTail = "\n</functions>\n";
constexpr size_t kMaxArgumentDepth = 256;

// ---- JSON as Python writes it -------------------------------------------------------------------------------------

void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// float.__repr__: the shortest digits that read back as x; positional for exponents in [-4, 16), else d.ddde+XX.
void append_float(std::string& out, double x) {
  if (std::isnan(x)) { out += "NaN"; return; }
  if (std::isinf(x)) { out += x < 0 ? "-Infinity" : "Infinity"; return; }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string_view s(buf, size_t(r.ptr - buf));  // [-]d[.ddd]e(+|-)XX
  if (s[0] == '-') {
    out += '-';
    s.remove_prefix(1);
  }
  const size_t e = s.find('e');
  std::string digits;
  for (const char c : s.substr(0, e)) if (c != '.') digits += c;
  int exp10 = 0;
  const std::string_view es = s.substr(e + 1);
  std::from_chars(es.data() + (es[0] == '+'), es.data() + es.size(), exp10);
  const int decpt = exp10 + 1;  // digits d1 d2 ... mean 0.d1d2... x 10^decpt
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (digits.size() > 1) out.append(".").append(digits, 1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  } else if (decpt <= 0) {
    out.append("0.").append(size_t(-decpt), '0').append(digits);
  } else if (digits.size() <= size_t(decpt)) {
    out.append(digits).append(size_t(decpt) - digits.size(), '0').append(".0");
  } else {
    out.append(digits, 0, size_t(decpt)).append(".").append(digits, size_t(decpt));
  }
}

void append_json(std::string& out, const oj& v, size_t depth) {
  DS_CHECK(depth <= kMaxArgumentDepth, "V3.2 encoding: JSON nested deeper than ", kMaxArgumentDepth, " levels");
  switch (v.type()) {
    case oj::value_t::null: out += "null"; break;
    case oj::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case oj::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case oj::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case oj::value_t::number_float: append_float(out, v.get<double>()); break;
    case oj::value_t::string: append_string(out, v.get_ref<const std::string&>()); break;
    case oj::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        append_json(out, e, depth + 1);
      }
      out += ']';
      break;
    }
    case oj::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        append_string(out, it.key());
        out += ": ";
        append_json(out, it.value(), depth + 1);
      }
      out += '}';
      break;
    }
    default: fail("V3.2 encoding: a binary JSON value cannot be written");
  }
}

// ---- Python semantics of message fields ---------------------------------------------------------------------------

// msg.get(key): nullptr for a missing key or None.
const oj* get(const oj& msg, const char* key) {
  const auto it = msg.find(key);
  return it == msg.end() || it->is_null() ? nullptr : &*it;
}

bool truthy(const oj* v) {
  if (!v) return false;
  switch (v->type()) {
    case oj::value_t::boolean: return v->get<bool>();
    case oj::value_t::number_integer: return v->get<int64_t>() != 0;
    case oj::value_t::number_unsigned: return v->get<uint64_t>() != 0;
    case oj::value_t::number_float: return v->get<double>() != 0;
    case oj::value_t::string: return !v->get_ref<const std::string&>().empty();
    case oj::value_t::array:
    case oj::value_t::object: return !v->empty();
    default: return true;
  }
}

const std::string& text_of(const oj& v, const char* what) {
  DS_CHECK(v.is_string(), "V3.2 encoding: a message's ", what, " must be a string or null");
  return v.get_ref<const std::string&>();
}

// "{content}".format(content=v): None prints as "None".
std::string format_field(const oj* v, const char* what) { return v ? text_of(*v, what) : "None"; }
// (v or ""): None and "" give "".
std::string or_empty(const oj* v, const char* what) { return v ? text_of(*v, what) : std::string(); }

std::string role_of(const oj& msg) {
  const oj* r = get(msg, "role");
  if (!r) return "None";
  DS_CHECK(r->is_string(), "V3.2 encoding: a message's role must be a string");
  return r->get<std::string>();
}

// The prompt being written, with the byte ranges that came from the caller.
struct Writer {
  RenderedPrompt p;
  void text(std::string_view s) { p.text += s; }
  void data(std::string_view s) {
    if (s.empty()) return;
    const size_t b = p.text.size();
    p.text += s;
    span(b, p.text.size());
  }
  // Another writer's text and spans after this one's.
  void append(const Writer& o) {
    const size_t base = p.text.size();
    p.text += o.p.text;
    for (const auto& [a, b] : o.p.data_spans) span(base + a, base + b);
  }

 private:
  void span(size_t b, size_t e) {
    DS_CHECK(e <= std::numeric_limits<uint32_t>::max(), "V3.2 encoding: the prompt exceeds 4 GiB");
    if (!p.data_spans.empty() && p.data_spans.back().second == b) p.data_spans.back().second = uint32_t(e);
    else p.data_spans.emplace_back(uint32_t(b), uint32_t(e));
  }
};

// A message as render_message sees it: drop_thinking's copy without reasoning_content is a flag here.
struct Msg {
  const oj* m;
  bool drop_reasoning = false;
  std::string role;
};

long last_user_index(const std::vector<Msg>& ms) {
  for (long i = long(ms.size()) - 1; i >= 0; --i)
    if (ms[size_t(i)].role == "user" || ms[size_t(i)].role == "developer") return i;
  return -1;
}

// tools_from_openai_format: each tool's "function" object.
std::vector<const oj*> tool_functions(const oj& tools) {
  DS_CHECK(tools.is_array(), "V3.2 encoding: 'tools' must be an array");
  std::vector<const oj*> out;
  for (const auto& t : tools) {
    DS_CHECK(t.is_object() && t.contains("function"), "V3.2 encoding: each tool needs a 'function'");
    out.push_back(&t["function"]);
  }
  return out;
}

struct Call {
  std::string name;
  const std::string* arguments;
};
// tool_calls_from_openai_format.
std::vector<Call> calls_of(const oj& tool_calls) {
  DS_CHECK(tool_calls.is_array(), "V3.2 encoding: 'tool_calls' must be an array");
  std::vector<Call> out;
  for (const auto& c : tool_calls) {
    DS_CHECK(c.is_object() && c.contains("function") && c["function"].is_object() && c["function"].contains("name") &&
                 c["function"].contains("arguments"),
             "V3.2 encoding: each tool call needs function.name and function.arguments");
    const oj& f = c["function"];
    DS_CHECK(f["name"].is_string() && f["arguments"].is_string(),
             "V3.2 encoding: a tool call's name and arguments must be strings");
    out.push_back({f["name"].get<std::string>(), &f["arguments"].get_ref<const std::string&>()});
  }
  return out;
}

size_t nesting(std::string_view s) {
  size_t depth = 0, max_depth = 0;
  bool in_str = false, esc = false;
  for (const char ch : s) {
    if (in_str) {
      if (esc) esc = false;
      else if (ch == '\\') esc = true;
      else if (ch == '"') in_str = false;
    } else if (ch == '"') {
      in_str = true;
    } else if (ch == '[' || ch == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

void render_tools(Writer& w, const std::vector<const oj*>& fns) {
  w.text(kToolsHead);
  for (size_t i = 0; i < fns.size(); ++i) {
    if (i) w.text("\n");
    std::string s;
    append_json(s, *fns[i], 0);
    w.data(s);
  }
  w.text(kToolsTail);
}

void render_response_format(Writer& w, const oj& rf) {
  std::string s;
  append_json(s, rf, 0);
  w.text("\n\n");
  w.text(kResponseFormat);
  w.data(s);
}

// encode_arguments_to_dsml + tool_call_template for one call.
void render_invoke(Writer& w, const Call& c) {
  DS_CHECK(nesting(*c.arguments) <= kMaxArgumentDepth, "V3.2 encoding: tool call arguments nested deeper than ",
           kMaxArgumentDepth, " levels");
  const oj args = oj::parse(*c.arguments, nullptr, false);
  DS_CHECK(!args.is_discarded(), "V3.2 encoding: the arguments of tool call '", c.name, "' are not valid JSON");
  DS_CHECK(args.is_object(), "V3.2 encoding: the arguments of tool call '", c.name, "' are not a JSON object");
  w.text("<");
  w.text(kDsml);
  w.text("invoke name=\"");
  w.data(c.name);
  w.text("\">\n");
  bool first = true;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (!first) w.text("\n");
    first = false;
    const bool is_str = it.value().is_string();
    w.text("<");
    w.text(kDsml);
    w.text("parameter name=\"");
    w.data(it.key());
    w.text(is_str ? "\" string=\"true\">" : "\" string=\"false\">");
    if (is_str) {
      w.data(it.value().get_ref<const std::string&>());
    } else {
      std::string s;
      append_json(s, it.value(), 0);
      w.data(s);
    }
    w.text("</");
    w.text(kDsml);
    w.text("parameter>");
  }
  w.text("\n</");
  w.text(kDsml);
  w.text("invoke>");
}

void render_message(Writer& w, size_t index, const std::vector<Msg>& ms, bool thinking) {
  DS_CHECK(index < ms.size(), "V3.2 encoding: message index ", index, " out of range (drop_thinking removed a ",
           "message before the last user turn)");
  const Msg& msg = ms[index];
  const oj& m = *msg.m;
  const long last_user = last_user_index(ms);
  const oj* content = get(m, "content");
  const oj* tools = get(m, "tools");
  const oj* response_format = get(m, "response_format");
  const oj* tool_calls = get(m, "tool_calls");
  const oj* reasoning = msg.drop_reasoning ? nullptr : get(m, "reasoning_content");
  std::vector<const oj*> fns;
  std::vector<Call> calls;
  if (truthy(tools)) fns = tool_functions(*tools);
  if (truthy(tool_calls)) calls = calls_of(*tool_calls);
  const bool think_here = long(index) == last_user && thinking;
  const std::string& role = msg.role;

  if (role == "system") {
    w.data(or_empty(content, "content"));
    if (truthy(tools)) {
      w.text("\n\n");
      render_tools(w, fns);
    }
    if (truthy(response_format)) render_response_format(w, *response_format);
  } else if (role == "developer") {
    DS_CHECK(truthy(content), "V3.2 encoding: a developer message needs content");
    w.text(kUser);
    if (truthy(tools)) {
      w.text("\n\n");
      render_tools(w, fns);
    }
    if (truthy(response_format)) render_response_format(w, *response_format);
    w.text("\n\n# The user's message is: ");
    w.data(text_of(*content, "content"));
    w.text(kAssistant);
    w.text(think_here ? kThinkStart : kThinkEnd);
  } else if (role == "user") {
    w.text(kUser);
    w.data(format_field(content, "content"));
    w.text(kAssistant);
    w.text(think_here ? kThinkStart : kThinkEnd);
  } else if (role == "tool") {
    // The assistant message whose calls these results answer; Python's messages[-1] (the last message) when the
    // search runs off the front.
    const auto at = [&](long i) -> const Msg& { return ms[i < 0 ? size_t(long(ms.size()) + i) : size_t(i)]; };
    long prev = long(index) - 1;
    const Msg* assistant = &at(prev);
    while (prev >= 0 && assistant->role == "tool") {
      --prev;
      assistant = &at(prev);
    }
    DS_CHECK(index == 0 || (prev >= 0 && assistant->role == "assistant"), "V3.2 encoding: the tool result at message ",
             index, " does not follow an assistant message with tool calls");
    const size_t order = size_t(long(index) - prev);
    const oj* answered = get(*assistant->m, "tool_calls");
    DS_CHECK(truthy(answered) && answered->is_array() && answered->size() >= order,
             "V3.2 encoding: no tool call for the tool result at message ", index);
    if (order == 1) w.text("\n\n<function_results>");
    w.text("\n<result>");
    w.data(format_field(content, "content"));
    w.text("</result>");
    if (order == answered->size()) {
      w.text("\n</function_results>\n\n");
      w.text(long(index) >= last_user && thinking ? kThinkStart : kThinkEnd);
    }
  } else if (role == "assistant") {
    Writer calls_w;  // rendered first, as the Python does (bad arguments fail before the reasoning check)
    if (!calls.empty()) {
      calls_w.text("\n\n<");
      calls_w.text(kDsml);
      calls_w.text("function_calls>\n");
      for (size_t i = 0; i < calls.size(); ++i) {
        if (i) calls_w.text("\n");
        render_invoke(calls_w, calls[i]);
      }
      calls_w.text("\n</");
      calls_w.text(kDsml);
      calls_w.text("function_calls>");
    }
    if (thinking && long(index) > last_user) {
      DS_CHECK(truthy(reasoning) || !calls.empty(), "V3.2 encoding: in thinking mode, the assistant message ", index,
               " after the last user message needs reasoning_content or tool_calls");
      w.data(or_empty(reasoning, "reasoning_content"));
      w.text(kThinkEnd);
    }
    w.data(or_empty(content, "content"));
    w.append(calls_w);
    w.text(kEos);
  } else {
    fail("V3.2 encoding: unknown role '", role, "' (system, developer, user, assistant, tool)");
  }
}

// drop_thinking_messages: assistant turns before the last user turn lose their reasoning; other roles there that are
// not user, system or tool (developer) are removed.
std::vector<Msg> drop_thinking(std::vector<Msg> ms) {
  const long last_user = last_user_index(ms);
  std::vector<Msg> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    Msg& m = ms[i];
    if (m.role == "user" || m.role == "system" || m.role == "tool" || long(i) >= last_user) {
      out.push_back(m);
    } else if (m.role == "assistant") {
      m.drop_reasoning = true;
      out.push_back(m);
    }
  }
  return out;
}

// ---- the completion parser ----------------------------------------------------------------------------------------

struct Read {
  size_t index;
  std::string_view content;
  int stop;  // index into the stop list; -1: none found (content runs to the end)
};

// _read_until_stop: the earliest of the stops (the first listed on a tie).
Read read_until(size_t index, std::string_view text, std::initializer_list<std::string_view> stops) {
  size_t min_pos = text.size();
  int matched = -1, k = 0;
  for (const std::string_view s : stops) {
    const size_t pos = index <= text.size() ? text.find(s, index) : std::string_view::npos;
    if (pos != std::string_view::npos && pos < min_pos) {
      min_pos = pos;
      matched = k;
    }
    ++k;
  }
  if (matched < 0) return {text.size(), index < text.size() ? text.substr(index) : std::string_view(), -1};
  return {min_pos + stops.begin()[matched].size(), text.substr(index, min_pos - index), matched};
}

const std::string kInvoke = "<" + std::string(kDsml) + "invoke", kInvokeEnd = "</" + std::string(kDsml) + "invoke",
                  kParam = "<" + std::string(kDsml) + "parameter", kParamEnd = "/" + std::string(kDsml) + "parameter",
                  kCallsEnd = "</" + std::string(kDsml) + "function_calls>",
                  kCallsStart = "\n\n" + std::string(kFunctionCalls);

// Python's \s (str patterns): the byte length of the whitespace character at s[i], 0 if none.
size_t space_len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
  static const std::string_view wide[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
                                          "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
                                          "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};
  for (const std::string_view w : wide)
    if (s.substr(i, w.size()) == w) return w.size();
  return 0;
}

bool ends_with(std::string_view s, std::string_view e) {
  return s.size() >= e.size() && s.substr(s.size() - e.size()) == e;
}

// re.findall(r'^\s*name="(.*?)">\n$', s, DOTALL): `$` also matches before a final newline.
bool match_invoke_name(std::string_view s, std::string& name) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = space_len(s, i);
    if (!n) break;
    i += n;
  }
  constexpr std::string_view open = "name=\"";
  if (s.substr(i, open.size()) != open) return false;
  const std::string_view rest = s.substr(i + open.size());
  if (ends_with(rest, "\">\n\n")) name = rest.substr(0, rest.size() - 4);
  else if (ends_with(rest, "\">\n")) name = rest.substr(0, rest.size() - 3);
  else return false;
  return true;
}

// re.findall(r'^ name="(.*?)" string="(true|false)">(.*?)<$', s, DOTALL).
bool match_parameter(std::string_view s, std::string& name, bool& is_str, std::string_view& value) {
  constexpr std::string_view open = " name=\"", attr = "\" string=\"";
  if (s.substr(0, open.size()) != open) return false;
  // The value ends at the final '<' (or a '<' before a final newline).
  size_t lt;
  if (ends_with(s, "<")) lt = s.size() - 1;
  else if (ends_with(s, "<\n")) lt = s.size() - 2;
  else return false;
  for (size_t p = s.find(attr, open.size()); p != std::string_view::npos; p = s.find(attr, p + 1)) {
    const std::string_view tail = s.substr(p + attr.size());
    const size_t flag = tail.substr(0, 6) == "true\">" ? 6 : tail.substr(0, 7) == "false\">" ? 7 : 0;
    if (!flag || p + attr.size() + flag > lt) continue;
    name = s.substr(open.size(), p - open.size());
    is_str = flag == 6;
    value = s.substr(p + attr.size() + flag, lt - (p + attr.size() + flag));
    return true;
  }
  return false;
}

struct CallsRead {
  size_t index;
  std::vector<ToolCall> calls;
  bool closed = false;  // the block's closing tag was read
};

// parse_tool_calls, from just after "\n\n<｜DSML｜function_calls".
CallsRead read_calls(size_t index, std::string_view text) {
  CallsRead r{index, {}};
  while (r.index < text.size()) {
    const Read a = read_until(r.index, text, {kInvoke, kCallsEnd});
    r.index = a.index;
    DS_CHECK(a.content == ">\n", "Tool call format error");
    if (a.stop == 1) {
      r.closed = true;
      break;
    }
    DS_CHECK(a.stop >= 0, "Missing special token");
    const Read n = read_until(r.index, text, {kParam, kInvokeEnd});
    r.index = n.index;
    ToolCall call;
    DS_CHECK(match_invoke_name(n.content, call.name), "Tool name format error");
    std::vector<std::pair<std::string, std::string>> args;  // name -> the value's JSON
    int stop = n.stop;
    while (stop == 0) {
      const Read p = read_until(r.index, text, {kParamEnd});
      r.index = p.index;
      std::string key;
      bool is_str = false;
      std::string_view value;
      DS_CHECK(match_parameter(p.content, key, is_str, value), "Parameter format error");
      for (const auto& [k, v] : args) DS_CHECK(k != key, "Duplicate parameter name");
      std::string v;
      if (is_str) append_string(v, value);
      else v = value;
      args.emplace_back(std::move(key), std::move(v));
      const Read q = read_until(r.index, text, {kParam, kInvokeEnd});
      r.index = q.index;
      stop = q.stop;
      DS_CHECK(q.content == ">\n", "Parameter format error");
    }
    // decode_dsml_to_arguments
    call.arguments = "{";
    for (size_t i = 0; i < args.size(); ++i) {
      if (i) call.arguments += ", ";
      append_string(call.arguments, args[i].first);
      call.arguments += ": " + args[i].second;
    }
    call.arguments += "}";
    r.calls.push_back(std::move(call));
  }
  return r;
}

}  // namespace

std::string to_json(const nlohmann::ordered_json& value) {
  std::string out;
  append_json(out, value, 0);
  return out;
}

RenderedPrompt encode_messages(const nlohmann::ordered_json& messages, const EncodeOptions& opt) {
  DS_CHECK(messages.is_array(), "V3.2 encoding: the messages must be a JSON array");
  DS_CHECK(opt.context <= messages.size(), "V3.2 encoding: context of ", opt.context, " messages but only ",
           messages.size(), " given");
  std::vector<Msg> ms;
  for (const auto& m : messages) {
    DS_CHECK(m.is_object(), "V3.2 encoding: each message must be a JSON object");
    ms.push_back({&m, false, role_of(m)});
  }
  Writer w;
  if (opt.add_bos && opt.context == 0) w.text(kBos);
  if (opt.thinking && opt.drop_thinking) ms = drop_thinking(std::move(ms));
  for (size_t i = opt.context; i < messages.size(); ++i) render_message(w, i, ms, opt.thinking);
  return std::move(w.p);
}

ParsedMessage parse_completion(std::string_view text, bool thinking) {
  ParsedMessage out;
  size_t index = 0;
  if (thinking) {
    const Read r = read_until(index, text, {kThinkEnd, kCallsStart});
    index = r.index;
    out.reasoning = r.content;
    DS_CHECK(r.stop == 0, "Invalid thinking format");
  }
  Read r = read_until(index, text, {kEos, kCallsStart});
  index = r.index;
  out.content = r.content;
  int stop = r.stop;  // 0: eos
  if (r.stop == 1) {
    CallsRead c = read_calls(index, text);
    out.tool_calls = std::move(c.calls);
    const Read rest = read_until(c.index, text, {kEos});
    DS_CHECK(rest.content.empty(), "Unexpected content after tool calls");
    index = rest.index;
    stop = rest.stop;
  } else {
    DS_CHECK(r.stop == 0, "Invalid summary format");
  }
  DS_CHECK(index == text.size() && stop <= 0, "Unexpected content at end");
  for (const std::string_view sp : {kBos, kEos, kThinkStart, kThinkEnd, kDsml})
    DS_CHECK(out.content.find(sp) == std::string::npos && out.reasoning.find(sp) == std::string::npos,
             "Unexpected special token in content");
  return out;
}

FunctionCalls parse_function_calls(std::string_view text) {
  const size_t at = text.find(kFunctionCalls);
  DS_CHECK(at != std::string_view::npos, "no function_calls block");
  CallsRead c = read_calls(at + kFunctionCalls.size(), text);
  return FunctionCalls{std::move(c.calls), c.closed};
}

}  // namespace ds::tok::dsv32
