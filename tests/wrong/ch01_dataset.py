from wrong import Case

CASES = {
    "targets_shifted_wrong_way": Case(
        answers={"previous_token_targets": '''
def previous_token_targets(tokens):
    targets = torch.full_like(tokens, 0)
    targets[:, :-1] = tokens[:, 1:]          # next token, not previous
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    return targets, mask
'''},
        loses={"test_previous_token_targets": 3},
        says="shifted the wrong way: position 1 should predict token 0"),
    "bos_in_loss": Case(
        answers={"masked_loss": '''
def masked_loss(logits, targets, mask):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
'''},
        loses={"test_masked_loss": 2},
        says="includes the positions the mask leaves out"),
    "accuracy_over_all_positions": Case(
        answers={"masked_accuracy": '''
def masked_accuracy(logits, targets, mask):
    return (logits.argmax(-1) == targets).float().mean().item()
'''},
        loses={"test_masked_accuracy": 2},
        says="averaged over every position, BOS included"),
    "accuracy_rewrites_its_mask": Case(  # the caller's mask changes: named before the value
        answers={"masked_accuracy": '''
def masked_accuracy(logits, targets, mask):
    mask[:] = True                     # every position counts: the caller's mask changes too
    return (logits.argmax(-1) == targets).float().mean().item()
'''},
        loses={"test_masked_accuracy": 2},
        says="masked_accuracy changed `mask` in place"),
    "tokens_from_zero": Case(
        answers={"make_batch": '''
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    tokens = torch.randint(0, d_vocab, (batch_size, n_ctx), generator=generator)
    tokens[:, 0] = 0
    return tokens.to(device)
'''},
        loses={"test_make_batch": 3},
        says="data tokens must come from 1..d_vocab-1"),
    "batch_from_a_copy_of_the_generator": Case(  # the same batch at every training step
        answers={"make_batch": '''
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    g = torch.Generator()
    g.set_state(generator.get_state())   # a copy: the caller's generator never moves on
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx), generator=g)
    tokens[:, 0] = 0
    return tokens.to(device)
'''},
        loses={"test_make_batch": 3},
        says="did not move the generator on"),
    "float_tokens": Case(
        answers={"make_batch": '''
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx), generator=generator).float()
    tokens[:, 0] = 0
    return tokens.to(device)
'''},
        loses={"test_make_batch": 3},
        says="dtype torch.long"),
    "loss_hardcodes_bos_slice": Case(  # passes the visible check, caught by a hidden test
        answers={"masked_loss": '''
def masked_loss(logits, targets, mask):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), targets[:, 1:].flatten())
'''},
        loses={"test_masked_loss": 2},
        says="ignores the mask"),
    "mask_includes_bos": Case(
        answers={"previous_token_targets": '''
def previous_token_targets(tokens):
    targets = torch.zeros_like(tokens)
    targets[:, 1:] = tokens[:, :-1]
    return targets, torch.ones_like(tokens, dtype=torch.bool)
'''},
        loses={"test_previous_token_targets": 3},
        says="mask includes position 0 (BOS)"),
    "accuracy_as_a_tensor": Case(
        answers={"masked_accuracy": '''
def masked_accuracy(logits, targets, mask):
    return (logits.argmax(-1) == targets)[mask].float().mean()
'''},
        loses={"test_masked_accuracy": 2},
        says="return it as a Python float"),
    "loss_divided_by_every_position": Case(  # right when only BOS is left out; a hidden mask catches it
        answers={"masked_loss": '''
def masked_loss(logits, targets, mask):
    per = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return (per * mask.flatten()).sum() / mask.numel()
'''},
        loses={"test_masked_loss": 2},
        says="mask.numel()"),
}


# Correct alternatives: another formula, loops, another library call, another order.
# Each must keep full marks (loses nothing).
HARMLESS = {
    "batch_bos_column_concatenated": {"make_batch": """
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    body = torch.randint(1, d_vocab, (batch_size, n_ctx - 1), generator=generator)
    bos = torch.full((batch_size, 1), BOS, dtype=torch.long)
    return torch.cat([bos, body], dim=1).to(device)
"""},
    "batch_row_by_row": {"make_batch": """
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    rows = []
    for _ in range(batch_size):
        row = torch.randint(1, d_vocab, (n_ctx,), generator=generator)
        row[0] = BOS
        rows.append(row)
    return torch.stack(rows).to(device)
"""},
    "batch_shifted_range_and_masked_fill": {"make_batch": """
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    tokens = torch.randint(0, d_vocab - 1, (batch_size, n_ctx), generator=generator) + 1
    first = torch.zeros_like(tokens, dtype=torch.bool)
    first[:, 0] = True
    return tokens.masked_fill(first, BOS).to(device=device, dtype=torch.long)
"""},
    "targets_by_roll": {"previous_token_targets": """
def previous_token_targets(tokens):
    targets = torch.roll(tokens, shifts=1, dims=1)
    targets[:, 0] = BOS
    mask = (torch.arange(tokens.shape[1]) > 0).expand(tokens.shape[0], -1).clone()
    return targets, mask
"""},
    "targets_by_concatenation": {"previous_token_targets": """
def previous_token_targets(tokens):
    targets = torch.cat([torch.zeros_like(tokens[:, :1]), tokens[:, :-1]], dim=1)
    mask = torch.ones(tokens.shape, dtype=torch.bool)
    mask[:, 0] = False
    return targets, mask
"""},
    "targets_in_a_loop": {"previous_token_targets": """
def previous_token_targets(tokens):
    targets = tokens.clone()
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    targets[:, 0] = BOS
    for t in range(tokens.shape[1] - 1, 0, -1):
        targets[:, t] = tokens[:, t - 1]
        mask[:, t] = True
    return targets, mask
"""},
    "loss_by_weighted_sum": {"masked_loss": """
def masked_loss(logits, targets, mask):
    each = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (each * mask).sum() / mask.sum()
"""},
    "loss_by_log_softmax_gather": {"masked_loss": """
def masked_loss(logits, targets, mask):
    log_probs = logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -log_probs[mask].mean()
"""},
    "loss_by_nll": {"masked_loss": """
def masked_loss(logits, targets, mask):
    return F.nll_loss(F.log_softmax(logits[mask], dim=-1), targets[mask])
"""},
    "accuracy_by_counts": {"masked_accuracy": """
def masked_accuracy(logits, targets, mask):
    right = (logits.argmax(-1) == targets) & mask
    return right.sum().item() / mask.sum().item()
"""},
    "accuracy_by_masked_select": {"masked_accuracy": """
def masked_accuracy(logits, targets, mask):
    return float(torch.masked_select(logits.argmax(-1) == targets, mask).float().mean())
"""},
    "accuracy_in_a_loop": {"masked_accuracy": """
def masked_accuracy(logits, targets, mask):
    right = total = 0
    guesses = logits.argmax(-1)
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            if mask[b, t]:
                total += 1
                right += int(guesses[b, t] == targets[b, t])
    return right / total
"""},
}
