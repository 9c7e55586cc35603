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
    "scheduler_before_optimizer": Case(
        answers={"train_step": _STEP.replace("    optimizer.step()\n    {sched}", "    {sched}\n    optimizer.step()")
                 .format(**GOOD)},
        loses={"test_train_step": 4}, says="step the scheduler after optimizer.step()"),
    "zero_grad_after_backward": Case(
        answers={"train_step": _STEP.replace("    {zero}\n    loss.backward()", "    loss.backward()\n    {zero}")
                 .format(**GOOD)},
        loses={"test_train_step": 4}, says="not between backward() and optimizer.step()"),
}
