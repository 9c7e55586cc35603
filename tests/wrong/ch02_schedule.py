from wrong import Case

CASES = {
    "max_instead_of_min": Case(
        answers={"warmup_multiplier": '''
def warmup_multiplier(step, warmup_steps):
    return max(step / warmup_steps, 1.0)
'''},
        loses={"test_warmup_multiplier": 3}, says="original bug"),
    "off_by_one_warmup": Case(
        answers={"warmup_multiplier": '''
def warmup_multiplier(step, warmup_steps):
    return min((step + 1) / warmup_steps, 1.0)
'''},
        loses={"test_warmup_multiplier": 3}, says="off by one"),
    "lr_zero_forever": Case(
        answers={"warmup_multiplier": '''
def warmup_multiplier(step, warmup_steps):
    return min(step // warmup_steps, 1) * 0.0
'''},
        loses={"test_warmup_multiplier": 3}, says="the multiplier is 0 all through the warm-up"),
    "warmup_ignores_its_argument": Case(  # right for the visible 100 steps; hidden lengths catch it
        answers={"warmup_multiplier": '''
def warmup_multiplier(step, warmup_steps):
    return min(step / 100, 1.0)
'''},
        loses={"test_warmup_multiplier": 3}, says="ignores its warmup_steps argument"),
    "warmup_denominator_plus_one": Case(
        answers={"warmup_multiplier": '''
def warmup_multiplier(step, warmup_steps):
    return min(step / (warmup_steps + 1), 1.0)
'''},
        loses={"test_warmup_multiplier": 3}, says="off by one in the denominator"),
    "cosine_not_clamped": Case(
        answers={"warmup_cosine_multiplier": '''
def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))
'''},
        loses={"test_warmup_cosine_multiplier": 3}, says="comes back up"),
    "cosine_over_all_steps": Case(
        answers={"warmup_cosine_multiplier": '''
def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    return 0.5 * (1 + math.cos(math.pi * step / total_steps))
'''},
        loses={"test_warmup_cosine_multiplier": 3}, says="cosine runs over all"),
    # not a mistake: a recipe read off the notebook's own sweep must score what it scores
    # in the learner's run (graded, the sweep is the recorded one, so `best` is the same)
    "recipe_from_the_sweep": Case(
        answers={"my_recipe": "MY_RECIPE = dict(lr=float(best), warmup_steps=40, total_steps=500, "
                              "batch_size=32)"},
        loses={}),
    "original_learning_rate": Case(
        answers={"my_recipe": "MY_RECIPE = dict(lr=1e-4, warmup_steps=100, total_steps=500, batch_size=64)"},
        loses={"test_my_recipe": 2}, says="learning rate"),
    "over_budget": Case(
        answers={"my_recipe": "MY_RECIPE = dict(lr=1e-2, warmup_steps=100, total_steps=4000, batch_size=32)"},
        loses={"test_my_recipe": 2}, says="the budget is 500 steps"),
    "learning_rate_far_too_high": Case(
        answers={"my_recipe": "MY_RECIPE = dict(lr=0.5, warmup_steps=40, total_steps=500, batch_size=32)"},
        loses={"test_my_recipe": 2}, says="too large"),
    "recipe_with_a_stray_key": Case(
        answers={"my_recipe": "MY_RECIPE = dict(lr=1e-2, warmup_steps=40, total_steps=500, batch_size=32, "
                              "steps=500)"},
        loses={"test_my_recipe": 2}, says="keys the recipe does not use: ['steps']"),
}


# Correct alternatives: another formula, clamping instead of a branch, another order.
HARMLESS = {
    "warmup_as_a_branch": {"warmup_multiplier": """
def warmup_multiplier(step, warmup_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return 1.0
"""},
    "warmup_clamped": {"warmup_multiplier": """
def warmup_multiplier(step, warmup_steps):
    return max(0.0, min(1.0, step / warmup_steps))
"""},
    "warmup_capped_step": {"warmup_multiplier": """
def warmup_multiplier(step, warmup_steps):
    return min(step, warmup_steps) / warmup_steps
"""},
    "cosine_clamped_progress": {"warmup_cosine_multiplier": """
def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    progress = min(max((step - warmup_steps) / (total_steps - warmup_steps), 0.0), 1.0)
    return 0.5 * (1 + math.cos(math.pi * progress))
"""},
    "cosine_squared_half_angle": {"warmup_cosine_multiplier": """
def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    if step >= total_steps:
        return 0.0
    return math.cos(math.pi / 2 * (step - warmup_steps) / (total_steps - warmup_steps)) ** 2
"""},
    "cosine_end_first": {"warmup_cosine_multiplier": """
def warmup_cosine_multiplier(step, warmup_steps, total_steps):
    if step >= total_steps:
        return 0.0
    elif step >= warmup_steps:
        done = step - warmup_steps
        return (1 + math.cos(math.pi * done / (total_steps - warmup_steps))) / 2
    else:
        return step / warmup_steps
"""},
}
