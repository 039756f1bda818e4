import { alignedTable, csvText } from '../../common/table';

describe('text tables', () => {
  test('columns as wide as their widest cell, the first left-aligned, the rest right-aligned', () => {
    expect(alignedTable([['case', 'liver'], ['a-long-name', '0.5'], ['b', '1.0000']])).toBe('case          liver\na-long-name     0.5\nb            1.0000');
  });

  test('CSV quotes fields with commas, quotes or line breaks and doubles the quotes', () => {
    expect(csvText([['a', 'b,c'], ['say "hi"', 'two\nlines']])).toBe('a,"b,c"\n"say ""hi""","two\nlines"\n');
  });
});
