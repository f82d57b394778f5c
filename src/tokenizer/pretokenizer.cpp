// SPDX-License-Identifier: MIT
// PCRE2-backed pre-tokenizer (see pretokenizer.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ds::tok {

namespace {

// One JIT stack per thread, shared by all patterns: the default 32 KiB machine stack is too small for
// long runs under some patterns, so give JIT a larger growable one.
struct JitStack {
  pcre2_jit_stack* stack = nullptr;
  JitStack() { stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr); }
  ~JitStack() { if (stack) pcre2_jit_stack_free(stack); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

struct PreTokenizer::Rule {
  std::string regex;  // as written in tokenizer.json (for messages)
  pcre2_code* code = nullptr;
  bool jit = false;
  bool remove = false;  // behaviour "Removed": drop the matches, keep the gaps
  ~Rule() { if (code) pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(const nlohmann::json& spec) {
  std::vector<const nlohmann::json*> items;
  if (spec.is_null()) return;
  if (spec.value("type", "") == "Sequence") {
    for (const auto& p : spec.at("pretokenizers")) items.push_back(&p);
  } else {
    items.push_back(&spec);
  }
  for (const auto* p : items) {
    const std::string type = p->value("type", "");
    if (type == "ByteLevel") {
      DS_CHECK(!p->value("add_prefix_space", false) && !p->value("use_regex", true),
               "tokenizer.json: ByteLevel pre-tokenizer with add_prefix_space or use_regex is not supported");
      continue;  // the byte mapping itself happens in the BPE stage
    }
    DS_CHECK(type == "Split", "tokenizer.json: unsupported pre-tokenizer type '", type, "'");
    DS_CHECK(!p->value("invert", false), "tokenizer.json: Split with invert=true is not supported");
    const std::string behavior = p->value("behavior", "Isolated");
    DS_CHECK(behavior == "Isolated" || behavior == "Removed", "tokenizer.json: Split behaviour '", behavior,
             "' is not supported");
    const auto& pat = p->at("pattern");
    std::string regex;
    if (pat.contains("Regex")) regex = pat.at("Regex").get<std::string>();
    else regex = escape_literal(pat.at("String").get<std::string>());
    auto rule = std::make_unique<Rule>();
    rule->remove = behavior == "Removed";
    rule->regex = regex;
    int err = 0;
    PCRE2_SIZE off = 0;
    // UTF + UCP: \p{..}, \s and \w follow Unicode properties as in Oniguruma (which HF uses).
    rule->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                               PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    DS_CHECK(rule->code, "tokenizer.json: pre-tokenizer regex does not compile at offset ", off, ": ",
             pcre2_message(err), " (", regex, ")");
    rule->jit = pcre2_jit_compile(rule->code, PCRE2_JIT_COMPLETE) == 0;
    rules_.push_back(std::move(rule));
  }
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<Span>& out) const {
  if (text.empty()) return;
  thread_local JitStack jit_stack;
  // tokenizer.json comes with downloaded models, so its regexes are untrusted. PCRE2's match limit bounds one match
  // call (a call over it ends the splitting of that piece: the rest stays whole), but a pattern that matches at every
  // position after heavy backtracking would still take hours on a long text. So the whole split has a time budget
  // far above what real patterns need (they take well under 1 us per byte): exceeding it fails this text.
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const double budget_s = kBudgetSeconds + kBudgetSecondsPerByte * static_cast<double>(text.size());
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(budget_s));
  size_t rule_index = 0;
  std::vector<Span> cur{{0, static_cast<uint32_t>(text.size())}}, next;
  for (const auto& rule : rules_) {
    // Owned so that the budget's error (thrown mid-rule) frees them too.
    const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md_owner(
        pcre2_match_data_create_from_pattern(rule->code, nullptr), &pcre2_match_data_free);
    const std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> mc_owner(
        pcre2_match_context_create(nullptr), &pcre2_match_context_free);
    pcre2_match_data* md = md_owner.get();
    pcre2_match_context* mc = mc_owner.get();
    if (!md || !mc) fail("pre-tokenizer: out of memory creating PCRE2 match data");
    if (rule->jit && jit_stack.stack) pcre2_jit_stack_assign(mc, nullptr, jit_stack.stack);
    next.clear();
    next.reserve(cur.size() * 2);
    for (const Span& piece : cur) {
      // Each piece is matched as its own subject: lookaheads such as \s+(?!\S) must see the piece's end,
      // exactly as HF applies each Split to the pieces produced by the previous one.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + piece.begin);
      PCRE2_SIZE pos = 0, gap = 0;
      while (pos < piece.len) {
        const int rc = rule->jit ? pcre2_jit_match(rule->code, subject, piece.len, pos, PCRE2_NO_UTF_CHECK, md, mc)
                                 : pcre2_match(rule->code, subject, piece.len, pos, PCRE2_NO_UTF_CHECK, md, mc);
        if (Clock::now() > deadline) {
          const std::string& re = rule->regex;
          fail("tokenizer.json: pre-tokenizer rule ", rule_index, " took over ", budget_s, " s on a text of ",
                   text.size(), " bytes (its regex backtracks too much): ",
                   re.size() > 200 ? re.substr(0, 200) + "..." : re);
        }
        if (rc < 0) break;  // no match (or a resource limit: the rest stays one piece; BPE handles any length)
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        PCRE2_SIZE ms = ov[0], me = ov[1];
        if (me == ms) {  // empty match: step one character forward (none of the DeepSeek patterns do this)
          pos = ms + 1;
          while (pos < piece.len && (subject[pos] & 0xC0) == 0x80) ++pos;
          continue;
        }
        if (ms > gap) next.push_back({static_cast<uint32_t>(piece.begin + gap), static_cast<uint32_t>(ms - gap)});
        if (!rule->remove) next.push_back({static_cast<uint32_t>(piece.begin + ms), static_cast<uint32_t>(me - ms)});
        gap = pos = me;
      }
      if (gap < piece.len) next.push_back({static_cast<uint32_t>(piece.begin + gap), static_cast<uint32_t>(piece.len - gap)});
    }
    cur.swap(next);
    ++rule_index;
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace ds::tok
