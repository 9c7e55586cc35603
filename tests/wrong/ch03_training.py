from wrong import Case

_STEP = '''
def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    targets, mask = previous_token_targets(tokens)
    loss = {loss}
    {zero}
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable_parameters(model), clip)
    optimizer.step()
    {sched}
    return loss.item()
'''
GOOD = dict(loss="masked_loss(model(tokens), targets, mask)", zero="optimizer.zero_grad()",
            sched="scheduler.step()")


def step(**changes):
    return _STEP.format(**{**GOOD, **changes})


CASES = {
    "forgot_scheduler_step": Case(answers={"train_step": step(sched="pass")},
                                  loses={"test_train_step": 4}, says="scheduler was not stepped"),
    "scheduler_stepped_twice": Case(answers={"train_step": step(sched="scheduler.step(); scheduler.step()")},
                                    loses={"test_train_step": 4}, says="stepped the scheduler 2 times"),
    "forgot_zero_grad": Case(answers={"train_step": step(zero="pass")},
                             loses={"test_train_step": 4}, says="zero_grad"),
    "loss_includes_bos": Case(
        answers={"train_step": step(
            loss="torch.nn.functional.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())")},
        loses={"test_train_step": 4}, says="includes position 0 (BOS)"),
    "w_pos_left_trainable": Case(
        answers={"make_optimizer": '''
def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    model.pos.weight.requires_grad_(True)
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
'''},
        loses={"test_make_optimizer": 2}, says="holds W_pos"),
    "accuracy_per_sequence": Case(
        answers={"per_position_accuracy": '''
@torch.no_grad()
def per_position_accuracy(model, tokens):
    targets, _ = previous_token_targets(tokens)
    correct = model(tokens).argmax(dim=-1) == targets
    return correct[:, 1:].float().mean(dim=1)
'''},
        loses={"test_per_position_accuracy": 2}, says="one number per sequence"),
    "accuracy_leaves_model_in_train_mode": Case(  # examiner: train mode, BOS rewritten in place
        answers={"per_position_accuracy": '''
def per_position_accuracy(model, tokens):
    model.train()
    tokens[:, 0] = 0                   # BOS again, written into the caller's tokens
    targets, _ = previous_token_targets(tokens)
    return (model(tokens).argmax(-1) == targets)[:, 1:].float().mean(0)
'''},
        loses={"test_per_position_accuracy": 2}, says="left the model (`model`) in train mode"),
    "accuracy_reuses_the_tokens_buffer": Case(  # examiner: the caller's tokens become predictions
        answers={"per_position_accuracy": '''
@torch.no_grad()
def per_position_accuracy(model, tokens):
    targets, _ = previous_token_targets(tokens)
    out = tokens
    out[:] = model(tokens).argmax(dim=-1)
    return (out == targets)[:, 1:].float().mean(dim=0)
'''},
        loses={"test_per_position_accuracy": 2}, says="changed `tokens` in place"),
    "scheduler_before_optimizer": Case(
        answers={"train_step": _STEP.replace("    optimizer.step()\n    {sched}", "    {sched}\n    optimizer.step()")
                 .format(**GOOD)},
        loses={"test_train_step": 4}, says="step the scheduler after optimizer.step()"),
    "zero_grad_after_backward": Case(
        answers={"train_step": _STEP.replace("    {zero}\n    loss.backward()", "    loss.backward()\n    {zero}")
                 .format(**GOOD)},
        loses={"test_train_step": 4}, says="not between backward() and optimizer.step()"),
}


# Correct alternatives: another formula, another library call, another order of
# independent statements, clipping by hand.
HARMLESS = {
    "optimizer_filtered_parameters": {"make_optimizer": """
def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    return torch.optim.AdamW(filter(lambda p: p.requires_grad, model.parameters()), lr=lr,
                             betas=betas, weight_decay=weight_decay)
"""},
    "optimizer_parameter_group": {"make_optimizer": """
def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    group = {"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}
    return torch.optim.AdamW([group], lr, betas)
"""},
    "optimizer_by_name": {"make_optimizer": """
def make_optimizer(model, lr, betas=(0.9, 0.98), weight_decay=0.1):
    params = [p for name, p in model.named_parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=1e-8, weight_decay=weight_decay)
"""},
    "step_with_sliced_cross_entropy": {"train_step": """
def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, 1:].flatten(0, 1), tokens[:, :-1].flatten())
    optimizer.zero_grad(set_to_none=False)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
    optimizer.step()
    scheduler.step()
    return float(loss)
"""},
    "step_zero_grad_first": {"train_step": """
def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    optimizer.zero_grad()
    targets, mask = previous_token_targets(tokens)
    loss = masked_loss(model(tokens), targets, mask)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable_parameters(model), clip)
    optimizer.step()
    scheduler.step()
    return loss.detach().item()
"""},
    "step_zero_grad_after_step": {"train_step": """
def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    targets, mask = previous_token_targets(tokens)
    loss = masked_loss(model(tokens), targets, mask)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable_parameters(model), clip)
    optimizer.step()
    optimizer.zero_grad()
    scheduler.step()
    return loss.item()
"""},
    "step_clipped_by_hand": {"train_step": """
def train_step(model, optimizer, scheduler, tokens, clip=1.0):
    targets, mask = previous_token_targets(tokens)
    loss = masked_loss(model(tokens), targets, mask)
    optimizer.zero_grad()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if norm > clip:
        for g in grads:
            g.mul_(clip / (norm + 1e-6))
    optimizer.step()
    scheduler.step()
    return loss.item()
"""},
    "accuracy_position_by_position": {"per_position_accuracy": """
@torch.no_grad()
def per_position_accuracy(model, tokens):
    guesses = model(tokens).argmax(-1)
    return torch.stack([(guesses[:, t] == tokens[:, t - 1]).float().mean()
                        for t in range(1, tokens.shape[1])])
"""},
    "accuracy_by_slices": {"per_position_accuracy": """
def per_position_accuracy(model, tokens):
    with torch.no_grad():
        right = model(tokens).argmax(dim=-1)[:, 1:] == tokens[:, :-1]
    return right.float().mean(dim=0)
"""},
    "accuracy_by_sum_over_count": {"per_position_accuracy": """
def per_position_accuracy(model, tokens):
    targets, mask = previous_token_targets(tokens)
    right = (model(tokens).argmax(-1) == targets)[:, 1:].double()
    return (right.sum(dim=0) / tokens.shape[0]).detach()
"""},
}
