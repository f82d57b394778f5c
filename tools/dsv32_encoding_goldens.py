#!/usr/bin/python3
"""Goldens for DeepSeek-V3.2's chat encoding (src/tokenizer/dsv32_encoding.cpp), made by DeepSeek's own encoder.

usage: dsv32_encoding_goldens.py PATH/TO/encoding_dsv32.py OUT.json

The encoder is DeepSeek's `encoding/encoding_dsv32.py` from the DeepSeek-V3.2 model folder on the Hugging Face hub
(the repository does not ship it: pass its path). Pure Python, standard library only. Writes:
  encode: a conversation, the encoder's arguments (thinking_mode, drop_thinking, add_default_bos_token, and how many
          leading messages are `context`) and the text encode_messages returns, or the exception it raises;
  parse:  a completion text, thinking_mode, and what parse_message_from_completion_text returns or raises; the texts
          are the encoder's own renderings of assistant messages (as DeepSeek's test_encoding_dsv32.py makes them) and
          hand-written model outputs, well-formed and not;
  server: chat requests as the OpenAI API carries them, and the prompt the encoder makes of them under the server's
          mapping (tools and a json_schema response_format attached to the first system message, or to a system
          message put first; thinking from chat_template_kwargs; drop_thinking False), for tests/server.
Every case is rendered with the JSON key order of its input (the C++ tests read this file as ordered JSON).
"""
import copy
import hashlib
import importlib.util
import json
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
spec = importlib.util.spec_from_file_location('encoding_dsv32', sys.argv[1])
enc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(enc)


def call(name, args, cid=None):
    """An OpenAI tool call; dict arguments are serialised as Python does, strings are kept as written."""
    a = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return {'id': cid or 'call_' + name, 'type': 'function', 'function': {'name': name, 'arguments': a}}


def tool(role_content, tool_call_id='call_x'):
    return {'role': 'tool', 'tool_call_id': tool_call_id, 'content': role_content}


# Tool schemas: nested objects and arrays, enums, non-ASCII, control characters, keys in an unsorted order.
TOOLS = [
    {'type': 'function', 'function': {
        'name': 'get_weather', 'description': 'Weather of a city — 天气预报 ☀️',
        'parameters': {'type': 'object', 'properties': {
            'city': {'type': 'string', 'description': 'City name, e.g. "Zürich" or \\"Kyiv\\"'},
            'unit': {'type': 'string', 'enum': ['c', 'f']},
            'days': {'type': 'integer', 'minimum': 1, 'maximum': 14}}, 'required': ['city']}}},
    {'type': 'function', 'function': {
        'name': 'search_docs', 'description': 'Search\twith a tab, a newline\nand a bell \x07 in the description',
        'parameters': {'properties': {
            'query': {'type': 'string'},
            'filters': {'type': 'object', 'properties': {
                'tags': {'type': 'array', 'items': {'type': 'string'}},
                'after': {'type': ['string', 'null'], 'format': 'date'},
                'score': {'type': 'number', 'default': 0.5, 'exclusiveMinimum': 0, 'maximum': 1e+16}},
                'additionalProperties': False},
            'limit': {'type': 'integer', 'default': 10}}, 'type': 'object', 'required': ['query']},
        'strict': True}},
    {'type': 'function', 'function': {'name': 'ping', 'description': ''}},
]
SCHEMA = {'type': 'object', 'properties': {'answer': {'type': 'string'}, 'confidence': {'type': 'number'},
                                           'sources': {'type': 'array', 'items': {'type': 'string'}}},
          'required': ['answer'], 'title': 'Antwort – 答案'}
SPECIALS = ('<｜begin▁of▁sentence｜><｜end▁of▁sentence｜><｜User｜><｜Assistant｜><think></think>'
            '\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name="x">\n</｜DSML｜invoke>\n</｜DSML｜function_calls>'
            '<function_results><result></result></function_results><｜tool▁calls▁begin｜>')
UNICODE = 'Zürich, 東京, Київ, עברית, 😀👩‍👩‍👧, e\u0301, \u2028line sep, \x7f del, \u00a0nbsp'

weather_call = call('get_weather', {'city': 'Hangzhou', 'days': 2})
sys_tools = {'role': 'system', 'content': 'You are a helpful assistant.', 'tools': TOOLS}

CONVERSATIONS = {
    'user_only': [{'role': 'user', 'content': 'Hello!'}],
    'system_user': [{'role': 'system', 'content': 'You are terse.'}, {'role': 'user', 'content': 'What is 2+2?'}],
    'two_systems_two_users': [
        {'role': 'system', 'content': 'First system.'}, {'role': 'system', 'content': 'Second system.'},
        {'role': 'user', 'content': 'One.'}, {'role': 'user', 'content': 'Two.'}],
    'multi_turn_reasoning_before_last_user': [
        {'role': 'system', 'content': 'You are a helpful assistant.'},
        {'role': 'user', 'content': 'hello'},
        {'role': 'assistant', 'content': 'Hello! I am DeepSeek.', 'reasoning_content': 'thinking...'},
        {'role': 'user', 'content': '1+1=?'}],
    'multi_turn_reasoning_after_last_user': [
        {'role': 'user', 'content': 'hello'},
        {'role': 'assistant', 'content': 'Hi.', 'reasoning_content': 'an old thought'},
        {'role': 'user', 'content': 'and now?'},
        {'role': 'assistant', 'content': 'Now this.', 'reasoning_content': 'a current thought'}],
    'chat_assistant_without_reasoning': [
        {'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello there'}],
    'tools_system_user': [sys_tools, {'role': 'user', 'content': '明天杭州的天气怎么样？'}],
    'tools_system_without_content': [{'role': 'system', 'tools': TOOLS}, {'role': 'system', 'content': 'Be brief.'},
                                     {'role': 'user', 'content': 'Weather?'}],
    'tools_empty_list': [{'role': 'system', 'content': 'No tools here.', 'tools': []},
                         {'role': 'user', 'content': 'hi'}],
    'tool_call_string_params': [
        sys_tools, {'role': 'user', 'content': 'Weather in Hangzhou?'},
        {'role': 'assistant', 'reasoning_content': 'I should call get_weather.', 'content': None,
         'tool_calls': [call('get_weather', {'city': 'Hangzhou', 'unit': 'c'})]},
        tool('{"temp": 12, "sky": "多云"}', 'call_get_weather'),
        {'role': 'assistant', 'reasoning_content': 'It is cloudy.', 'content': 'Cloudy, 12 °C.'}],
    'tool_call_non_string_params': [
        sys_tools, {'role': 'user', 'content': 'Search.'},
        {'role': 'assistant', 'reasoning_content': 'Search with filters.', 'tool_calls': [call('search_docs', {
            'query': 'line1\nline2 "quoted" \\ back', 'limit': 5, 'ratio': 0.25, 'exact': True, 'nothing': None,
            'filters': {'tags': ['a', 'ü', '😀', 'us\x1f nul\x00 del\x7f'], 'after': None, 'score': 1e-07, 'nested': {'k': [1, [2, {}]]}},
            'empty_list': [], 'empty_obj': {}, 'big': 12345678901234567890, 'neg': -42, 'float_int': 3.0,
            'huge': 1e16, 'small': 0.0001, 'tiny': 1.5e-05, 'negzero': -0.0, 'max': 1.7976931348623157e308,
            'denormal': 5e-324, 'pi': 3.141592653589793, 'third': 0.1 + 0.2, 'ctrl': 'tab\there \x01 \x1f'})]},
        tool('{"hits": []}', 'call_search_docs'),
        {'role': 'assistant', 'reasoning_content': 'Nothing found.', 'content': 'No results.'}],
    'tool_call_arguments_as_written': [
        {'role': 'user', 'content': 'q'},
        {'role': 'assistant', 'content': 'Calling.', 'reasoning_content': 'r',
         'tool_calls': [call('f', '{"b":1,"a":"x","c":{"z":1,"y":[true,false]}}'),
                        call('g', ' { "s" : "sp ace" ,\n "n" : 1.50 , "e" : 1E2 } '),
                        call('h', '{}'), call('dup', '{"k": 1, "j": 2, "k": 3}')]},
        tool('1', 'call_f'), tool('2', 'call_g'), tool('3', 'call_h'), tool('4', 'call_dup')],
    'several_calls_multiple_results': [
        sys_tools, {'role': 'user', 'content': 'Weather in Hangzhou and Beijing, then ping.'},
        {'role': 'assistant', 'reasoning_content': 'Two cities.', 'content': '',
         'tool_calls': [call('get_weather', {'city': 'Hangzhou'}, 'c1'), call('get_weather', {'city': 'Beijing'}, 'c2')]},
        tool('{"sky": "多云"}', 'c1'), tool('{"sky": "晴"}', 'c2'),
        {'role': 'assistant', 'reasoning_content': 'Now ping.', 'tool_calls': [call('ping', {}, 'c3')]},
        tool('pong', 'c3'),
        {'role': 'assistant', 'reasoning_content': 'Done.', 'content': 'Hangzhou: cloudy; Beijing: sunny.'}],
    'tools_then_new_user_turn': [
        sys_tools, {'role': 'user', 'content': 'Weather in Hangzhou?'},
        {'role': 'assistant', 'reasoning_content': 'old reasoning', 'tool_calls': [weather_call]},
        tool('{"sky": "rain"}', 'call_get_weather'),
        {'role': 'assistant', 'reasoning_content': 'old summary reasoning', 'content': 'Rain.'},
        {'role': 'user', 'content': 'And tomorrow?'},
        {'role': 'assistant', 'reasoning_content': 'new reasoning', 'tool_calls': [weather_call]},
        tool('{"sky": "sun"}', 'call_get_weather')],
    'tool_result_last': [
        {'role': 'user', 'content': 'ping it'},
        {'role': 'assistant', 'reasoning_content': 'pinging', 'tool_calls': [call('ping', {})]},
        tool('pong')],
    'tool_call_without_reasoning': [
        {'role': 'user', 'content': 'ping it'},
        {'role': 'assistant', 'content': 'Sure.', 'tool_calls': [call('ping', {})]}, tool('pong')],
    'reasoning_empty_with_tool_call': [
        {'role': 'user', 'content': 'ping it'},
        {'role': 'assistant', 'reasoning_content': '', 'tool_calls': [call('ping', {})]}, tool('pong')],
    'developer_last': [
        {'role': 'system', 'content': 'sys'},
        {'role': 'developer', 'content': 'Find the weather.', 'tools': TOOLS, 'response_format': SCHEMA}],
    'developer_then_assistant': [
        {'role': 'developer', 'content': 'Use the tools.', 'tools': TOOLS[:1]},
        {'role': 'assistant', 'reasoning_content': 'ok', 'tool_calls': [weather_call]},
        tool('{"sky": "fog"}', 'call_get_weather')],
    'developer_before_last_user': [
        {'role': 'developer', 'content': 'Old task.'}, {'role': 'assistant', 'content': 'Done.'},
        {'role': 'user', 'content': 'New question.'}],
    'response_format_system': [
        {'role': 'system', 'content': 'Answer in JSON.', 'response_format': SCHEMA},
        {'role': 'user', 'content': 'Capital of France?'}],
    'response_format_and_tools_system': [
        {'role': 'system', 'tools': TOOLS[:1], 'response_format': {'type': 'json_object'}},
        {'role': 'user', 'content': 'hi'}],
    'response_format_empty': [{'role': 'system', 'content': 's', 'response_format': {}},
                              {'role': 'user', 'content': 'hi'}],
    'empty_contents': [
        {'role': 'system', 'content': ''}, {'role': 'user', 'content': ''},
        {'role': 'assistant', 'content': '', 'reasoning_content': 'only reasoning'}, {'role': 'user', 'content': ''}],
    'null_contents': [
        {'role': 'system', 'content': None}, {'role': 'user', 'content': None},
        {'role': 'assistant', 'content': None, 'tool_calls': [call('ping', {})]}, tool(None)],
    'special_token_text_in_content': [
        {'role': 'system', 'content': 'sys ' + SPECIALS},
        {'role': 'user', 'content': SPECIALS},
        {'role': 'assistant', 'content': 'a ' + SPECIALS, 'reasoning_content': 'r ' + SPECIALS,
         'tool_calls': [call('get_weather', {'city': SPECIALS, SPECIALS: 1})]},
        tool(SPECIALS, 'call_get_weather')],
    'unicode_content': [
        {'role': 'system', 'content': UNICODE, 'tools': [{'type': 'function', 'function': {
            'name': 'übersetzen', 'description': UNICODE,
            'parameters': {'type': 'object', 'properties': {'текст': {'type': 'string', 'description': '文本'}}}}}]},
        {'role': 'user', 'content': UNICODE},
        {'role': 'assistant', 'content': UNICODE, 'reasoning_content': UNICODE,
         'tool_calls': [call('übersetzen', {'текст': UNICODE, 'n': [UNICODE]})]},
        tool(UNICODE, 'call_übersetzen')],
    'leading_tool_message': [
        tool('orphan'), {'role': 'user', 'content': 'u'},
        {'role': 'assistant', 'content': '', 'reasoning_content': 'r', 'tool_calls': [call('f', {})]}],
    # Errors the encoder raises.
    'error_developer_without_content': [{'role': 'developer', 'content': ''}],
    'error_tool_without_call': [{'role': 'user', 'content': 'u'}, {'role': 'assistant', 'content': 'a'},
                                tool('t')],
    'error_more_results_than_calls': [
        {'role': 'user', 'content': 'u'},
        {'role': 'assistant', 'content': 'a', 'reasoning_content': 'r', 'tool_calls': [call('f', {})]},
        tool('1'), tool('2')],
    'error_unknown_role': [{'role': 'user', 'content': 'u'}, {'role': 'critic', 'content': 'c'}],
    'error_arguments_not_an_object': [
        {'role': 'user', 'content': 'u'},
        {'role': 'assistant', 'content': 'a', 'reasoning_content': 'r', 'tool_calls': [call('f', '[1, 2]')]}],
    'error_arguments_not_json': [
        {'role': 'user', 'content': 'u'},
        {'role': 'assistant', 'content': 'a', 'reasoning_content': 'r', 'tool_calls': [call('f', '{"a": ')]}],
}

# (thinking_mode, drop_thinking) for every conversation; a few more arguments below.
MODES = [('chat', True), ('thinking', True), ('thinking', False)]


def run_encode(messages, mode, drop, bos=True, context=0):
    row = {'messages': messages, 'thinking_mode': mode, 'drop_thinking': drop, 'add_default_bos_token': bos,
           'context': context}
    try:
        text = enc.encode_messages(copy.deepcopy(messages[context:]), thinking_mode=mode,
                                   context=copy.deepcopy(messages[:context]) or None, drop_thinking=drop,
                                   add_default_bos_token=bos)
        row['text'] = text
    except Exception as e:  # noqa: BLE001 - the golden records what the encoder raises
        row['error'] = type(e).__name__
    return row


encode_rows = []
for name, msgs in CONVERSATIONS.items():
    for mode, drop in MODES:
        encode_rows.append({'name': f'{name}/{mode}/drop={drop}', **run_encode(msgs, mode, drop)})
for name in ('system_user', 'tools_system_user', 'tool_call_string_params'):
    for mode in ('chat', 'thinking'):
        encode_rows.append({'name': f'{name}/{mode}/no-bos', **run_encode(CONVERSATIONS[name], mode, True, bos=False)})
# Context: only the messages after the first `context` are rendered, the earlier ones decide the indices.
for name, ctx in (('tool_call_string_params', 2), ('tool_call_string_params', 4), ('several_calls_multiple_results', 5),
                  ('multi_turn_reasoning_after_last_user', 3), ('developer_before_last_user', 1)):
    for mode in ('chat', 'thinking'):
        encode_rows.append({'name': f'{name}/{mode}/context={ctx}',
                            **run_encode(CONVERSATIONS[name], mode, True, context=ctx)})

# drop_thinking only removes what is never rendered: wherever both succeed, True and False give the same text.
by_name = {r['name']: r for r in encode_rows}
for name in CONVERSATIONS:
    a, b = by_name[f'{name}/thinking/drop=True'], by_name[f'{name}/thinking/drop=False']
    assert 'error' in a or 'error' in b or a['text'] == b['text'], name


def run_parse(text, mode, name):
    row = {'name': name, 'text': text, 'thinking_mode': mode}
    try:
        row['message'] = enc.parse_message_from_completion_text(text, thinking_mode=mode)
    except AssertionError as e:
        row['error'] = str(e)
    return row


parse_rows = []
# The encoder's rendering of each assistant message, with the conversation before it as context, parsed back (as
# DeepSeek's test does): the calls and texts must come back.
for name, msgs in CONVERSATIONS.items():
    if name.startswith('error_'):
        continue
    for i, m in enumerate(msgs):
        if m.get('role') != 'assistant':
            continue
        for mode in ('chat', 'thinking'):
            try:
                text = enc.encode_messages([copy.deepcopy(m)], context=copy.deepcopy(msgs[:i]), thinking_mode=mode)
            except Exception:  # noqa: BLE001 - not renderable in this mode
                continue
            row = run_parse(text, mode, f'roundtrip/{name}/{i}/{mode}')
            parse_rows.append(row)
            if 'message' in row:  # the calls survive the round trip (as JSON values)
                got = row['message']['tool_calls']
                want = m.get('tool_calls') or []
                assert len(got) == len(want), row['name']
                for g, w in zip(got, want):
                    assert g['function']['name'] == w['function']['name'], row['name']
                    assert json.loads(g['function']['arguments']) == json.loads(w['function']['arguments']), row['name']

E, D = enc.eos_token, '｜DSML｜'
FC = f'\n\n<{D}function_calls>\n'
FC_END = f'</{D}function_calls>'


def invoke(name, *params):
    body = '\n'.join(f'<{D}parameter name="{k}" string="{s}">{v}</{D}parameter>' for k, s, v in params)
    return f'<{D}invoke name="{name}">\n{body}\n</{D}invoke>'


HAND = [
    ('plain_chat', 'Just an answer.' + E, 'chat'),
    ('plain_thinking', 'Let me think.</think>The answer.' + E, 'thinking'),
    ('thinking_empty_reasoning', '</think>Answer.' + E, 'thinking'),
    ('chat_with_think_text', '<think>x</think>y' + E, 'chat'),
    ('call_string_and_json_params', 'Checking.' + FC + invoke('get_weather', ('city', 'true', 'Oslo'),
                                                                      ('days', 'false', '3'),
                                                                      ('opts', 'false', '{"a": [1, 2.50, "x"]}'),
                                                                      ('raw', 'false', 'not json')) + '\n' + FC_END + E,
     'chat'),
    ('string_param_escapes', FC + invoke('f', ('s', 'true', 'line1\nline2 "q" \\ \t 東京 😀'),
                                         ('json_looking', 'true', '{"a": 1}')) + '\n' + FC_END + E, 'chat'),
    ('two_invokes', 'r</think>' + FC + invoke('a', ('x', 'true', '1')) + '\n' + invoke('b') + '\n' + FC_END + E,
     'thinking'),
    ('call_without_eos', FC + invoke('a', ('x', 'true', '1')) + '\n' + FC_END, 'chat'),
    ('non_ascii_names', FC + invoke('übersetzen', ('текст', 'true', 'hallo')) + '\n' + FC_END + E, 'chat'),
    # Malformed: each is an assertion of the official parser.
    ('missing_think_end', 'reasoning without end' + E, 'thinking'),
    ('calls_inside_reasoning', 'r' + FC + invoke('a') + '\n' + FC_END + '</think>' + E, 'thinking'),
    ('no_eos', 'unfinished answer', 'chat'),
    ('content_after_calls', FC + invoke('a') + '\n' + FC_END + 'trailing' + E, 'chat'),
    ('text_after_eos', 'answer' + E + 'more', 'chat'),
    ('duplicate_param', FC + invoke('a', ('k', 'true', '1'), ('k', 'true', '2')) + '\n' + FC_END + E, 'chat'),
    ('bad_string_attr', FC + invoke('a', ('k', 'yes', '1')) + '\n' + FC_END + E, 'chat'),
    ('no_newline_after_block_open', f'\n\n<{D}function_calls>' + invoke('a') + '\n' + FC_END + E, 'chat'),
    ('truncated_in_param', FC + f'<{D}invoke name="a">\n<{D}parameter name="k" string="true">va', 'chat'),
    ('truncated_after_invoke', FC + invoke('a', ('k', 'true', 'v')), 'chat'),
    ('special_in_content', 'a <｜begin▁of▁sentence｜> b' + E, 'chat'),
    ('dsml_in_reasoning', f'think {D} more</think>ok' + E, 'thinking'),
    ('bad_invoke_name', FC + f'<{D}invoke nam="a">\n</{D}invoke>\n' + FC_END + E, 'chat'),
]
for name, text, mode in HAND:
    parse_rows.append(run_parse(text, mode, 'hand/' + name))


# Chat requests as the server maps them onto encode_messages (docs/SERVER.md).
def server_prompt(req):
    msgs = copy.deepcopy(req['messages'])
    kw = req.get('chat_template_kwargs', {})
    thinking = bool(kw.get('thinking', False) or kw.get('enable_thinking', False))
    extra = {}
    if req.get('tools') and req.get('tool_choice') != 'none':
        extra['tools'] = req['tools']
    rf = req.get('response_format')
    if rf and rf.get('type') == 'json_schema':
        extra['response_format'] = rf['json_schema']['schema']
    if extra:
        if msgs and msgs[0]['role'] == 'system':
            msgs[0].update(extra)
        else:
            msgs.insert(0, {'role': 'system', **extra})
    return enc.encode_messages(msgs, thinking_mode='thinking' if thinking else 'chat', drop_thinking=False)


WEATHER = [{'type': 'function', 'function': {'name': 'get_weather', 'description': 'Current weather',
                                             'parameters': {'type': 'object', 'properties': {'city': {'type': 'string'}},
                                                            'required': ['city']}}}]
SERVER = [
    ('plain', {'messages': [{'role': 'user', 'content': 'Hello!'}]}),
    ('thinking', {'messages': [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi?'}],
                  'chat_template_kwargs': {'thinking': True}}),
    ('enable_thinking', {'messages': [{'role': 'user', 'content': 'Hi?'}],
                         'chat_template_kwargs': {'enable_thinking': True}}),
    ('tools_with_system', {'messages': [{'role': 'system', 'content': 'You are terse.'},
                                        {'role': 'user', 'content': 'Weather in Oslo?'}], 'tools': WEATHER}),
    ('tools_without_system', {'messages': [{'role': 'user', 'content': 'Weather in Oslo?'}], 'tools': WEATHER,
                              'chat_template_kwargs': {'thinking': True}}),
    ('tool_choice_none', {'messages': [{'role': 'user', 'content': 'Weather in Oslo?'}], 'tools': WEATHER,
                          'tool_choice': 'none'}),
    ('tool_round_trip', {'messages': [
        {'role': 'user', 'content': 'Weather in Oslo?'},
        {'role': 'assistant', 'content': None, 'reasoning_content': 'Call it.',
         'tool_calls': [{'id': 'call_1', 'type': 'function',
                         'function': {'name': 'get_weather', 'arguments': '{"city":"Oslo","days":2}'}}]},
        {'role': 'tool', 'tool_call_id': 'call_1', 'content': '{"sky": "rain"}'}],
        'tools': WEATHER, 'chat_template_kwargs': {'thinking': True}}),
    ('history_reasoning_dropped', {'messages': [
        {'role': 'user', 'content': 'hello'},
        {'role': 'assistant', 'content': 'Hi!', 'reasoning_content': 'greeting'},
        {'role': 'user', 'content': '1+1=?'}], 'chat_template_kwargs': {'thinking': True}}),
    ('developer', {'messages': [{'role': 'developer', 'content': 'Summarise: <｜end▁of▁sentence｜> stays text.'}]}),
    ('response_format', {'messages': [{'role': 'user', 'content': 'Capital of France?'}],
                         'response_format': {'type': 'json_schema', 'json_schema': {
                             'name': 'answer', 'schema': {'type': 'object', 'properties': {
                                 'city': {'type': 'string'}}, 'required': ['city']}}}}),
]
server_rows = [{'name': n, 'request': r, 'prompt': server_prompt(r)} for n, r in SERVER]

with open(sys.argv[1], 'rb') as f:
    sha = hashlib.sha256(f.read()).hexdigest()
out = {
    'generator': 'tools/dsv32_encoding_goldens.py',
    'reference': {'file': 'encoding/encoding_dsv32.py (DeepSeek-V3.2, Hugging Face hub)', 'sha256': sha},
    'encode': encode_rows,
    'parse': parse_rows,
    'server': server_rows,
}
with open(sys.argv[2], 'w', encoding='utf-8') as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write('\n')
n_err = sum('error' in r for r in encode_rows)
p_err = sum('error' in r for r in parse_rows)
print(f'{sys.argv[2]}: {len(encode_rows)} encodings ({n_err} errors), {len(parse_rows)} parses ({p_err} errors), '
      f'{len(server_rows)} server requests')
