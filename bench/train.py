#!/usr/bin/python3
"""PyTorch side of bench/train.ts: the CIFAR-10 tutorial's VGG training step in
PyTorch on the same libtorch. Same model (the tutorial's VGG class, written out
in torch.nn, torchvision-style init), same synthetic in-memory data (seeded
randn inputs and randint labels, generated before timing and pre-split in
batches, so data loading is not measured), same optimizer, same thread count.

The step is the tutorial's: zero_grad, forward, CrossEntropyLoss, backward,
SGD(lr 0.005, momentum 0.9) step, loss.item(). zero_grad(set_to_none=True), as
vgg-torch's zeroGrad() does by default (PyTorch 1.13's own default zeroes the
gradients in place instead).

Usage: /usr/bin/python3 bench/train.py '{"threads": 2, "seed": 777, "warmup": 2, "configs": [[128, 4], [512, 1]]}'
Prints one JSON line: per (batch, steps) the timed seconds, images/s and the losses.
"""
import json, sys, time
import torch
import torch.nn as nn
import torch.optim as optim

CFG = [32, 32, 'M', 64, 64, 128, 128, 128, 'M', 256, 256, 256, 512, 512, 512, 'M']


def make_layers(cfg):
    layers, c = [], 3
    for v in cfg:
        if v == 'M':
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """The tutorial's VGG: features → flatten → classifier, no avgpool."""
    def __init__(self, features, num_classes=10):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Linear(512 * 4 * 4, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


def run(batch, steps, warmup, seed, amp=False):
    """amp: the forward pass and the loss under bf16 autocast (bench/amp.py), backward outside."""
    torch.manual_seed(seed)
    model = VGG(make_layers(CFG))
    model.train()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    data = [(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))) for _ in range(warmup + steps)]

    def step(inputs, labels):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
            outputs = model(inputs)
            loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    losses = [step(*data[i]) for i in range(warmup)]
    t = time.perf_counter()
    for i in range(warmup, warmup + steps):
        losses.append(step(*data[i]))
    seconds = time.perf_counter() - t
    return {'batch': batch, 'steps': steps, 'seconds': seconds, 'images_per_s': batch * steps / seconds,
            'first_loss': losses[0], 'last_loss': losses[-1]}


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec['threads'])
    out = [run(b, k, spec['warmup'], spec['seed']) for (b, k) in spec['configs']]
    print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'results': out}))


if __name__ == '__main__':  # bench/infer.py imports the model from here
    main()
