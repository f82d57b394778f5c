// SPDX-License-Identifier: MIT
// Hostile chat templates and tokenizer files (issue 15): each attack ends in a ds::Error naming the limit it hit, in
// bounded time and without the process allocating much past the render budget. Memory is measured by a test-local
// allocation counter (operator new/delete replaced below: live and peak bytes), which works the same under ASan.
// Also: the limits are exact (just under renders, just over fails), integer arithmetic is checked (no UB: the
// sanitizer pass runs this file), and the shipped templates render a long conversation well inside the defaults.
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <new>

#include "expect_error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tok_test_util.h"

// ---- Allocation counter (every operator new of this process) ----

namespace {
std::atomic<int64_t> g_live{0}, g_peak{0};

void* counted_alloc(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  const int64_t live = g_live.fetch_add(static_cast<int64_t>(malloc_usable_size(p))) +
                       static_cast<int64_t>(malloc_usable_size(p));
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
  return p;
}
void counted_free(void* p) {
  if (!p) return;
  g_live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}
}  // namespace

void* operator new(size_t n) { return counted_alloc(n); }
void* operator new[](size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, size_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t) noexcept { counted_free(p); }

namespace ds::tok::test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
constexpr double kSeconds = 20;  // the sanitizers slow everything ~10x; the Release bound is the one that matters
#else
constexpr double kSeconds = 2;
#endif

using jinja::Limits;
using jinja::RenderStats;
using jinja::Template;
using jinja::Value;

std::string render(const std::string& src, const Limits& lim = {}, RenderStats* stats = nullptr) {
  const Template t(src, lim);
  return t.render({{"messages", Value::make_list()}}, stats).s;
}

// Renders a hostile template with the default limits: it must throw ds::Error mentioning every piece, within
// kSeconds, and the peak of live heap bytes during the call may exceed the starting level by at most
// the value budget plus the output cap plus `slack` bytes.
::testing::AssertionResult refused(const std::string& src, std::initializer_list<std::string> pieces,
                                   const Limits& lim = {}) {
  const int64_t base = g_live.load();
  g_peak.store(base);
  const auto t0 = std::chrono::steady_clock::now();
  ::testing::AssertionResult r = ds::test::throws_with([&] { render(src, lim); }, pieces);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t grew = g_peak.load() - base;
  const int64_t allowed = static_cast<int64_t>(lim.max_value_bytes + lim.max_output_bytes) + (4 << 20);
  std::printf("%6.3f s  heap +%9lld  %.80s\n", dt, static_cast<long long>(grew), src.c_str());
  if (!r) return r << "\n  template: " << src.substr(0, 200);
  if (dt > kSeconds) return ::testing::AssertionFailure() << "took " << dt << " s: " << src.substr(0, 200);
  if (grew > allowed)
    return ::testing::AssertionFailure() << "heap grew by " << grew << " bytes (allowed " << allowed << "): " << src;
  return ::testing::AssertionSuccess() << r.message() << " (" << dt << " s, heap +" << grew << " bytes)";
}

const std::string kMin = "(-9223372036854775807 - 1)";  // INT64_MIN (its literal does not fit)

TEST(JinjaHostile, IntegerArithmeticIsCheckedNotUndefined) {
  // INT64_MIN % -1 traps (SIGFPE) in C++; Python defines it as 0.
  EXPECT_EQ(render("{{ " + kMin + " % -1 }}"), "0");
  EXPECT_TRUE(refused("{{ " + kMin + " // -1 }}", {"integer overflow", "//"}));
  EXPECT_TRUE(refused("{{ 9223372036854775807 + 1 }}", {"integer overflow", "+"}));
  EXPECT_TRUE(refused("{{ " + kMin + " - 1 }}", {"integer overflow", "-"}));
  EXPECT_TRUE(refused("{{ 4611686018427387904 * 2 }}", {"integer overflow", "*"}));
  EXPECT_TRUE(refused("{{ -" + kMin + " }}", {"integer overflow"}));
  EXPECT_TRUE(refused("{{ 2 ** 63 }}", {"integer overflow", "**"}));
  EXPECT_TRUE(refused("{{ 3 ** 9223372036854775807 }}", {"integer overflow", "**"}));
  EXPECT_TRUE(refused("{{ 1 // 0 }}", {"division by zero"}));
  EXPECT_TRUE(refused("{{ 1 % 0 }}", {"modulo by zero"}));
  EXPECT_TRUE(refused("{{ 1 / 0 }}", {"division by zero"}));
  EXPECT_TRUE(refused("{{ 1.5 % 0 }}", {"division by zero"}));
  EXPECT_TRUE(refused("{{ 0 ** -1 }}", {"negative power"}));
  // Exact results at the edges, with Python's signs for // and %.
  EXPECT_EQ(render("{{ 2 ** 62 }} {{ (-2) ** 63 }} {{ 2 ** -1 }} {{ 1 ** 9223372036854775807 }} {{ (-1) ** 9223372036854775807 }}"),
            "4611686018427387904 -9223372036854775808 0.5 1 -1");
  EXPECT_EQ(render("{{ 7 // -2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ -7.5 % 2 }} {{ " + kMin + " // 1 }}"),
            "-4 -4 2 -2 0.5 -9223372036854775808");
  EXPECT_EQ(render("{{ 9007199254740993 == 9007199254740992 }} {{ 9223372036854775807 > 9223372036854775806 }}"),
            "False True");
  EXPECT_EQ(render("{{ -2 ** 2 }} {{ 2 ** 3 ** 2 }}"), "4 64");  // Jinja: unary binds tighter, left to right
}

TEST(JinjaHostile, FloatToIntConversionsAreDefined) {
  EXPECT_TRUE(refused("{{ (10.0 ** 400) | int }}", {"int of inf", "64 bits"}));
  EXPECT_TRUE(refused("{{ (-10.0 ** 400) | int }}", {"64 bits"}));
  EXPECT_TRUE(refused("{{ (10.0 ** 19) | int }}", {"64 bits"}));
  EXPECT_EQ(render("{{ ((10.0 ** 400) - (10.0 ** 400)) | int }} {{ 2.9 | int }} {{ -2.9 | int }} {{ (2.0 ** 62) | int }}"),
            "0 2 -2 4611686018427387904");
  // Floats where an integer is needed are refused, not cast.
  EXPECT_TRUE(refused("{{ range(10.0 ** 400) }}", {"range expects an integer, got float"}));
  EXPECT_TRUE(refused("{{ [1, 2][10.0 ** 400] }}", {"list index expects an integer"}));
  EXPECT_TRUE(refused("{{ [1, 2][:10.0 ** 400] }}", {"slice bound expects an integer"}));
  EXPECT_TRUE(refused("{{ 'ab'[0.0 - 10.0 ** 400] }}", {"string index expects an integer"}));
  EXPECT_EQ(render("{{ 10.0 ** 400 // 1 }} {{ 10.0 ** 400 * 0 }}"), "inf nan");
}

TEST(JinjaHostile, IndexRangeAndSliceEdgesDoNotOverflow) {
  EXPECT_EQ(render("{{ range(0, 9223372036854775807, 4611686018427387904) | join(',') }}"), "0,4611686018427387904");
  EXPECT_EQ(render("{{ range(9223372036854775807, " + kMin + ", " + kMin + ") | join(',') }}"), "9223372036854775807,-1");
  EXPECT_EQ(render("{{ [1, 2, 3][::9223372036854775807] }} {{ [1, 2, 3][::" + kMin + "] }} {{ 'abc'[::-1] }}"),
            "[1] [3] cba");
  EXPECT_EQ(render("{{ [1, 2, 3][" + kMin + ":9223372036854775807] }} {{ 'héllo'[" + kMin + ":] }}"),
            "[1, 2, 3] héllo");
  EXPECT_EQ(render("[{{ [1, 2][" + kMin + "] }}] {{ 'héllo'[1] }} {{ 'héllo'[-4] }} [{{ 'ab'[" + kMin + "] }}]"),
            "[] é é []");
  EXPECT_EQ(render("{{ 'a😀b' | length }} {{ 'a😀b' | last }} {{ ' \u3000 x y \n' | trim }}|"), "3 b x y|");
}

TEST(JinjaHostile, RangeIsSizedByTheBudgetBeforeAllocating) {
  EXPECT_TRUE(refused("{% for i in range(1000000000000000000) %}{% endfor %}",
                      {"range()", "exceeds the render budget of 67108864 bytes"}));
  EXPECT_TRUE(refused("{{ range(" + kMin + ", 9223372036854775807) | length }}", {"range()", "render budget"}));
}

TEST(JinjaHostile, StringGrowthIsRefusedBeforeAllocating) {
  // 'x' * N, then replace: 10 GB in one step.
  EXPECT_TRUE(refused("{{ ('x' * 10000000).replace('x', 'y' * 1000) }}", {"replace", "exceeds the render budget"}));
  EXPECT_TRUE(refused("{{ 'x' * 100000000 }}", {"string repetition", "exceeds the render budget of 67108864 bytes"}));
  EXPECT_TRUE(refused("{{ 'ab' * 9223372036854775807 }}", {"string repetition", "render budget"}));
  // `~` doubling in a loop: each step is small, the sum is not.
  EXPECT_TRUE(refused("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                      {"'~' concatenation", "render budget"}));
  EXPECT_TRUE(refused("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                      {"string '+'", "render budget"}));
  // The same big string copied again and again: the budget is cumulative, so this is bounded work too.
  EXPECT_TRUE(refused("{% set s = 'x' * 20000000 %}{% for i in range(1000000) %}{% set t = s ~ '' %}{% endfor %}",
                      {"render budget"}));
  // join / print / tojson of a list holding one big string many times: the output is checked before each piece.
  const std::string many = "{% set ns = namespace(l=['x' * 1000000]) %}{% for i in range(12) %}{% set ns.l = ns.l + ns.l %}"
                           "{% endfor %}";
  EXPECT_TRUE(refused(many + "{{ ns.l | join(',') }}", {"join", "render budget"}));
  EXPECT_TRUE(refused(many + "{{ ns.l }}", {"printing", "render budget"}));
  EXPECT_TRUE(refused(many + "{{ ns.l | tojson }}", {"tojson", "render budget"}));
  EXPECT_TRUE(refused(many + "{{ ns.l | string }}", {"render budget"}));
  // A per-character table of a big string (8+ bytes a byte) is charged too.
  EXPECT_TRUE(refused("{{ ('x' * 10000000) | list | length }}", {"characters", "render budget"}));
  EXPECT_TRUE(refused("{% for c in 'x' * 10000000 %}{% endfor %}", {"characters", "render budget"}));
}

TEST(JinjaHostile, ListGrowthIsRefusedBeforeAllocating) {
  EXPECT_TRUE(refused("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                      {"list '+'", "render budget"}));
  EXPECT_TRUE(refused("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}"
                      "{% set ns.r = ns.l[::-1] %}{% endfor %}",
                      {"render budget"}));
  EXPECT_TRUE(refused("{{ ('x ' * 20000000).split() | length }}", {"render budget"}));
}

TEST(JinjaHostile, DeepValuesAreRefusedAtCreation) {
  // A 200,000-deep list built in a loop would overflow the stack in the value destructor; two 300,000-deep lists,
  // in the comparison. Nesting past max_value_depth is refused when the container is made.
  EXPECT_TRUE(refused("{% set ns = namespace(l=[]) %}{% for i in range(200000) %}{% set ns.l = [ns.l] %}{% endfor %}",
                      {"a list nested 65 levels deep exceeds the limit of 64", "max_value_depth"}));
  EXPECT_TRUE(refused("{% set ns = namespace(a=[], b=[]) %}{% for i in range(300000) %}{% set ns.a = [ns.a] %}"
                      "{% set ns.b = [ns.b] %}{% endfor %}{{ ns.a == ns.b }}",
                      {"nested 65 levels deep"}));
  EXPECT_TRUE(refused("{% set ns = namespace(d={}) %}{% for i in range(100000) %}{% set ns.d = {'k': ns.d} %}{% endfor %}",
                      {"a dict nested 65 levels deep"}));
  // A namespace inside a namespace could form a cycle (ns.x = ns): refused.
  EXPECT_TRUE(refused("{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}", {"namespace cannot be stored"}));
  EXPECT_TRUE(refused("{% set ns = namespace(x=1) %}{% set ns.x = [1, {'a': ns}] %}", {"namespace cannot be stored"}));
  EXPECT_TRUE(refused("{% set a = namespace(x=1) %}{% set b = namespace(y=a) %}", {"namespace cannot be stored"}));
  // JSON input nested deeper than the cap is refused before the render (nlohmann parses and frees it iteratively).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto msgs = nlohmann::json::array({{{"role", "user"}, {"content", nlohmann::json::parse(deep)}}});
  EXPECT_TRUE(ds::test::throws_with([&] { ChatTemplate("{{ messages }}", "", "").render(msgs); },
                                    {"nested deeper than 64 levels"}));
}

TEST(JinjaHostile, LongExpressionChainsFailCleanly) {
  // `1+1+...` and filter chains parse into trees as deep as they are long: evaluation refuses them, and freeing them
  // must not recurse (the destructor is iterative).
  const auto chain = [](const std::string& head, const std::string& link, int n) {
    std::string s = "{{ " + head;
    for (int i = 0; i < n; ++i) s += link;
    return s + " }}";
  };
  EXPECT_TRUE(refused(chain("1", "+1", 30000), {"evaluation nested too deeply"}));
  EXPECT_TRUE(refused(chain("'x'", "|trim", 20000), {"evaluation nested too deeply"}));
  EXPECT_TRUE(refused(chain("messages", ".a", 30000), {"evaluation nested too deeply"}));
  // The parse tree is capped at max_template_bytes / 16 nodes (~500 bytes each with their tokens), and a tag at as
  // many tokens: 800 KB of `+1` is refused early, or 80 tags of 10 KB each.
  EXPECT_TRUE(refused(chain("1", "+1", 400000), {"more than 65536 tokens", "max_template_bytes / 16"}));
  std::string tags;
  for (int i = 0; i < 80; ++i) tags += chain("1", "+1", 5000);
  EXPECT_TRUE(refused(tags, {"more than 65536 syntax nodes", "max_template_bytes / 16"}));
}

TEST(JinjaHostile, ScanningWorkCostsSteps) {
  // Each `in` scans 30 MB: 100,000 of them would take minutes; the scanned bytes count as steps.
  EXPECT_TRUE(refused("{% set s = 'x' * 30000000 %}{% for i in range(100000) %}{% if 'y' in s %}{% endif %}{% endfor %}",
                      {"step limit (5000000) exceeded"}));
  EXPECT_TRUE(refused("{% set s = 'x' * 30000000 %}{% for i in range(100000) %}{% if s == s ~ '' %}{% endif %}{% endfor %}",
                      {"render budget"}));
  EXPECT_TRUE(refused("{% set s = 'x' * 30000000 %}{% for i in range(100000) %}{{ s | length }}{% endfor %}",
                      {"step limit"}));
  EXPECT_TRUE(refused("{% set l = range(500000) | list %}{% for i in range(100000) %}{% if -1 in l %}{% endif %}{% endfor %}",
                      {"step limit"}));
  EXPECT_TRUE(refused("{% for i in range(100000000) %}{% endfor %}", {"range()", "render budget"}));
  std::string ifs;
  for (int i = 0; i < 10; ++i) ifs += "{% if i %}{% endif %}";
  EXPECT_TRUE(refused("{% for i in range(300000) %}" + ifs + "{% endfor %}", {"step limit (5000000) exceeded"}));
}

TEST(JinjaHostile, OutputIsCappedBeforeAppending) {
  EXPECT_TRUE(refused("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}",
                      {"output", "exceeds the limit of 16777216 bytes", "max_output_bytes"}));
  EXPECT_TRUE(refused("{% for i in range(100000) %}" + std::string(1000, 'x') + "{% endfor %}", {"max_output_bytes"}));
}

TEST(JinjaHostile, LimitsAreExact) {
  const std::string src = "{% set s = 'ab' * 5000 %}{{ s | length }}{{ s[:10] }}";
  RenderStats st;
  EXPECT_EQ(render(src, {}, &st), "10000ababababab");
  ASSERT_GT(st.value_bytes, 10000u);
  ASSERT_GT(st.steps, 5u);
  EXPECT_EQ(st.output_bytes, 15u);
  Limits lim;
  lim.max_value_bytes = st.value_bytes;
  EXPECT_EQ(render(src, lim), "10000ababababab");
  lim.max_value_bytes = st.value_bytes - 1;
  EXPECT_TRUE(ds::test::throws_with([&] { render(src, lim); },
                                    {"exceeds the render budget of " + std::to_string(st.value_bytes - 1) + " bytes"}));
  lim = {};
  lim.max_steps = st.steps;
  EXPECT_EQ(render(src, lim), "10000ababababab");
  lim.max_steps = st.steps - 1;
  EXPECT_TRUE(ds::test::throws_with([&] { render(src, lim); }, {"step limit (" + std::to_string(st.steps - 1)}));
  lim = {};
  lim.max_output_bytes = 15;
  EXPECT_EQ(render(src, lim), "10000ababababab");
  lim.max_output_bytes = 14;
  EXPECT_TRUE(ds::test::throws_with([&] { render(src, lim); }, {"exceeds the limit of 14 bytes"}));
  // Value depth: [] is 1 deep; wrapped 63 times it is 64 (the default cap), 64 times 65.
  const auto nest = [](int n) {
    return "{% set ns = namespace(l=[]) %}{% for i in range(" + std::to_string(n) +
           ") %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l | tojson | length }}";
  };
  EXPECT_EQ(render(nest(63)), "128");
  EXPECT_TRUE(ds::test::throws_with([&] { render(nest(64)); }, {"nested 65 levels deep exceeds the limit of 64"}));
  lim = {};
  lim.max_value_depth = 8;
  EXPECT_EQ(render(nest(7), lim), "16");
  EXPECT_TRUE(ds::test::throws_with([&] { render(nest(8), lim); }, {"exceeds the limit of 8"}));
  // The budget is real: a string just under it renders, just over it is refused before allocating.
  lim = {};
  lim.max_value_bytes = 1 << 20;
  const size_t fits = (1 << 20) - jinja::kObjectBytes;
  EXPECT_EQ(render("{{ ('x' * " + std::to_string(fits) + ") | length }}", lim), std::to_string(fits));
  EXPECT_TRUE(ds::test::throws_with([&] { render("{{ 'x' * " + std::to_string(fits + 1) + " }}", lim); },
                                    {"string repetition", "render budget of 1048576 bytes"}));
}

TEST(JinjaHostile, CancelFlagStopsARender) {
  std::atomic<bool> cancel{true};
  Limits lim;
  lim.cancel = &cancel;
  EXPECT_TRUE(ds::test::throws_with([&] { render("{% for i in range(100000) %}x{% endfor %}", lim); }, {"cancelled"}));
  cancel = false;
  EXPECT_EQ(render("{% for i in range(3) %}x{% endfor %}", lim), "xxx");
}

// The shipped templates render a long conversation (400 messages, 1.6 MB of content, tools) using a small part of
// the default limits, so the defaults refuse only what no real template does.
TEST(JinjaHostile, RealTemplatesRenderLongConversationsWellInsideTheDefaults) {
  const auto tools = nlohmann::ordered_json::parse(read_file(fixture("chat_tools.json"))).at("tools_param");
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  msgs.push_back({{"role", "system"}, {"content", "You are helpful. " + std::string(4000, 's')}});
  for (int i = 0; i < 200; ++i) {
    msgs.push_back({{"role", "user"}, {"content", "Question " + std::to_string(i) + " " + std::string(4000, 'q')}});
    msgs.push_back({{"role", "assistant"}, {"content", "<think>" + std::string(2000, 't') + "</think>" + std::string(2000, 'a')}});
  }
  msgs.push_back({{"role", "user"}, {"content", "last"}});
  const Limits lim;
  for (const char* name : {"deepseek-v3", "deepseek-v3.1", "deepseek-r1", "deepseek-r1-0528", "deepseek-r1-distill-qwen",
                           "deepseek-r1-distill-llama", "llamacpp-deepseek-r1-distill-qwen-32b", "qwen3"}) {
    const std::string src = read_file(fixture(std::string("templates/") + name + ".jinja"));
    const Template t(src, lim);
    std::vector<std::pair<std::string, Value>> g = {
        {"messages", jinja::from_json(msgs, true)}, {"tools", jinja::from_json(tools, true)},
        {"bos_token", Value::plain("<s>")}, {"eos_token", Value::plain("</s>")},
        {"add_generation_prompt", Value::boolean(true)}};
    RenderStats st;
    const auto t0 = std::chrono::steady_clock::now();
    const jinja::TString out = t.render(g, &st);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-40s steps %8zu  value bytes %9zu  output %8zu  %.3f s\n", name, st.steps, st.value_bytes,
                st.output_bytes, dt);
    EXPECT_GT(out.s.size(), 800'000u) << name;
    EXPECT_LT(st.value_bytes, lim.max_value_bytes / 4) << name;
    EXPECT_LT(st.steps, lim.max_steps / 10) << name;
    EXPECT_LT(st.output_bytes, lim.max_output_bytes / 8) << name;
  }
}

// ---- Tokenizer files: ids are bounded by the number of tokens ----

nlohmann::json tiny_tokenizer() {
  return nlohmann::json::parse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
                                   "added_tokens": [{"id": 3, "content": "<x>", "special": true}]})");
}

// Loads within kSeconds and without the heap growing by more than `max_growth` bytes (throwing or not).
::testing::AssertionResult load_is_cheap(const std::function<void()>& load, int64_t max_growth) {
  const int64_t base = g_live.load();
  g_peak.store(base);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    load();
  } catch (const ds::Error&) {
  }
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t grew = g_peak.load() - base;
  if (dt > kSeconds || grew > max_growth)
    return ::testing::AssertionFailure() << dt << " s, heap +" << grew << " bytes";
  return ::testing::AssertionSuccess();
}

TEST(HostileTokenizerFile, IdsFarBeyondTheVocabularyAreRefused) {
  EXPECT_EQ(Tokenizer(tiny_tokenizer(), nullptr).encode("ab<x>", true), (std::vector<int32_t>{2, 3}));
  // One vocabulary id of 2^24 - 1 used to size the id tables to 16M entries: 1 GB and 5.5 s for a 10-token file.
  auto j = tiny_tokenizer();
  j["model"]["vocab"]["ab"] = 16777215;
  EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer(j, nullptr); },
                                    {"tokenizer.json", "vocabulary token 'ab'", "16777215", "out of range", "4 tokens",
                                     "below 1028"}));
  EXPECT_TRUE(load_is_cheap([&] { Tokenizer(j, nullptr); }, 1 << 20));
  j = tiny_tokenizer();
  j["added_tokens"][0]["id"] = 16777215;
  EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer(j, nullptr); }, {"added token '<x>'", "16777215", "out of range"}));
  EXPECT_TRUE(load_is_cheap([&] { Tokenizer(j, nullptr); }, 1 << 20));
  // Holes within the slack are allowed (the GGUF [PAD] fill leaves some): id 1027 is the last one for 4 entries.
  j = tiny_tokenizer();
  j["added_tokens"][0]["id"] = 1027;
  EXPECT_EQ(Tokenizer(j, nullptr).vocab_size(), 1028u);
  j["added_tokens"][0]["id"] = 1028;
  EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer(j, nullptr); }, {"'<x>' has id 1028"}));
  // Negative, huge and non-integer ids: ds::Error, never a cast.
  for (const nlohmann::json& bad : {nlohmann::json(-1), nlohmann::json(uint64_t(1) << 63), nlohmann::json(1.5),
                                    nlohmann::json(1e300), nlohmann::json("1")}) {
    j = tiny_tokenizer();
    j["model"]["vocab"]["b"] = bad;
    EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer(j, nullptr); }, {"vocabulary token 'b'"})) << bad.dump();
  }
  // Wrong field types come out as ds::Error too (not nlohmann::json::exception), as from JSON text.
  j = tiny_tokenizer();
  j["added_tokens"][0]["special"] = "yes";
  EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer(j, nullptr); }, {"tokenizer.json: unexpected structure"}));
  EXPECT_TRUE(ds::test::throws_with([] { Tokenizer::from_json_text("{\"model\": "); }, {"tokenizer.json: invalid JSON"}));
  EXPECT_EQ(Tokenizer::from_json_text(tiny_tokenizer().dump()).vocab_size(), 4u);
}

TEST(HostileTokenizerFile, FromDirNamesTheFile) {
  const std::string dir = ::testing::TempDir() + "/ds_hostile_tokenizer";
  std::filesystem::create_directories(dir);
  auto j = tiny_tokenizer();
  j["model"]["vocab"]["ab"] = 16777215;
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  EXPECT_TRUE(ds::test::throws_with([&] { Tokenizer::from_dir(dir); },
                                    {dir + "/tokenizer.json: vocabulary token 'ab' has id 16777215"}));
  std::filesystem::remove_all(dir);
}

// The real tokenizers are dense (no holes at all), well inside the bound.
TEST(HostileTokenizerFile, RealTokenizersAreDense) {
  for (const char* name : {"qwen3", "llama3_1"}) EXPECT_GT(model_tok(name).vocab_size(), 100000u) << name;
  EXPECT_EQ(v3().vocab_size(), 128815u);
}

}  // namespace
}  // namespace ds::tok::test
