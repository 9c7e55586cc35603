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
    "tokens_from_zero": Case(
        answers={"make_batch": '''
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    tokens = torch.randint(0, d_vocab, (batch_size, n_ctx), generator=generator)
    tokens[:, 0] = 0
    return tokens.to(device)
'''},
        loses={"test_make_batch": 3},
        says="data tokens must come from 1..d_vocab-1"),
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
