import json

import lrjax

schedule = lrjax.join(
    [lrjax.constant(0.1), lrjax.cosine(init_value=0.1, steps=500)], boundaries=[100]
)
text = json.dumps(schedule.to_dict())
print(text)
again = lrjax.from_dict(json.loads(text))
print(again == schedule, float(again(350)))

try:
    lrjax.one_cycle(max_value=0.1, total_steps=1_000, pct_start=1.5)
except ValueError as e:
    print("ValueError:", e)
