from trading.numbers import count, pct, price, signed_num, signed_usd, usd


def test_one_style_for_numbers():
    assert usd(1234.5) == "$1,234.50"
    assert usd(-12) == "-$12.00"
    assert signed_usd(135.78) == "+$135.78"
    assert signed_usd(-91.714) == "-$91.71"
    assert signed_usd(0.0) == "+$0.00"
    assert price(3219.99) == "3,219.99"
    assert count(13460) == "13,460"
    assert pct(0.5234) == "52.3%"
    assert signed_num(2287.4) == "+2,287.40"
    assert usd(None) == price(None) == count(None) == "—"
