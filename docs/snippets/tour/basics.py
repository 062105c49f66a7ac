import lrjax

s = lrjax.one_cycle(max_value=0.1, total_steps=1000)
print(s)
print(s(0), s(250), s(999))
